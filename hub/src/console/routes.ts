// Serves the console (one HTML document, one stylesheet, one script; no
// framework, no build step) and the read endpoints it plots from, with headers
// that keep the page from being framed, sniffed or made to run foreign code.
import type { FastifyPluginAsync } from 'fastify'
import type { ApiDeps } from '../api/server.js'
import { CONSOLE_HTML, CONSOLE_CSS } from './page.js'
import { CONSOLE_JS } from './app.js'
import { consoleDataRoutes } from '../api/routes/console-data.js'

/**
 * Scripts only from the hub's own origin and never inline (an injected
 * `<script>` or `onclick=` does not run); API calls only to the hub; no
 * plug-ins, frames or foreign form targets. Inline style attributes stay
 * allowed: the charts size their bars with them, and CSS cannot run script.
 */
const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY', // frame-ancestors for browsers that predate CSP 2
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

export const consoleRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const cache = 'public, max-age=300'
  app.get('/', async (_req, res) => res.type('text/html; charset=utf-8').headers(SECURITY_HEADERS).send(CONSOLE_HTML))
  app.get('/console.css', async (_req, res) =>
    res.type('text/css; charset=utf-8').headers(SECURITY_HEADERS).header('cache-control', cache).send(CONSOLE_CSS),
  )
  app.get('/console.js', async (_req, res) =>
    res
      .type('text/javascript; charset=utf-8')
      .headers(SECURITY_HEADERS)
      .header('cache-control', cache)
      .send(CONSOLE_JS),
  )
  await app.register(consoleDataRoutes, deps)
}
