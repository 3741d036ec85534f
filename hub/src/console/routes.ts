// Serves the console.
import type { FastifyPluginAsync } from 'fastify'
import type { ApiDeps } from '../api/server.js'
import { CONSOLE_HTML } from './page.js'

export const consoleRoutes: FastifyPluginAsync<ApiDeps> = async (app) => {
  app.get('/', async (_req, res) => res.type('text/html; charset=utf-8').send(CONSOLE_HTML))
}
