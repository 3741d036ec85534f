// Serves the console (one HTML document, one stylesheet, one script; no
// framework, no build step) and the read endpoints it plots from.
import type { FastifyPluginAsync } from 'fastify'
import type { ApiDeps } from '../api/server.js'
import { CONSOLE_HTML, CONSOLE_CSS } from './page.js'
import { CONSOLE_JS } from './app.js'
import { consoleDataRoutes } from '../api/routes/console-data.js'

export const consoleRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const cache = 'public, max-age=300'
  app.get('/', async (_req, res) => res.type('text/html; charset=utf-8').send(CONSOLE_HTML))
  app.get('/console.css', async (_req, res) =>
    res.type('text/css; charset=utf-8').header('cache-control', cache).send(CONSOLE_CSS),
  )
  app.get('/console.js', async (_req, res) =>
    res.type('text/javascript; charset=utf-8').header('cache-control', cache).send(CONSOLE_JS),
  )
  await app.register(consoleDataRoutes, deps)
}
