// Serves the console: one HTML document, one stylesheet and one script (the
// bundle hub/scripts/bundle-console.mjs builds from ui/, under a URL carrying
// its content hash so browsers may cache it for good), plus the read
// endpoints it plots from, with headers that keep the page from being framed,
// sniffed or made to run foreign code.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { ApiDeps } from '../api/server.js'
import { CONSOLE_CSS, consoleHtml } from './page.js'
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

/**
 * The built bundle: beside this module in dist/, or in dist/ when this module runs from src/ (the unit
 * tests); else a script that says how to build it (a checkout where only `tsc -b` ran).
 */
function loadBundle(): string {
  for (const path of ['./bundle.js', '../../dist/console/bundle.js']) {
    try {
      return readFileSync(new URL(path, import.meta.url), 'utf8')
    } catch {
      // not here: try the next place
    }
  }
  return "document.body.textContent = 'The console is not built: run pnpm build (it bundles hub/src/console/ui).'"
}

export const consoleRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const script = loadBundle()
  const hash = createHash('sha256').update(script).digest('hex').slice(0, 16)
  const scriptPath = `/console.${hash}.js`
  const html = consoleHtml(scriptPath)
  const sendScript = (res: FastifyReply, cache: string) =>
    res.type('text/javascript; charset=utf-8').headers(SECURITY_HEADERS).header('cache-control', cache).send(script)
  // The page names the current script, so it is never cached stale; the hashed script never changes.
  app.get('/', async (_req, res) =>
    res.type('text/html; charset=utf-8').headers(SECURITY_HEADERS).header('cache-control', 'no-cache').send(html),
  )
  app.get('/console.css', async (_req, res) =>
    res
      .type('text/css; charset=utf-8')
      .headers(SECURITY_HEADERS)
      .header('cache-control', 'public, max-age=300')
      .send(CONSOLE_CSS),
  )
  app.get(scriptPath, async (_req, res) => sendScript(res, 'public, max-age=31536000, immutable'))
  // The unhashed name stays for bookmarks and tools; it is revalidated every time.
  app.get('/console.js', async (_req, res) => sendScript(res, 'no-cache'))
  await app.register(consoleDataRoutes, deps)
}
