// Guards on what requests carry, before handlers see it [EF-6.2.1], each
// found by fuzzing as a 500: the JSON body parser (fastify's own, with its
// prototype-poisoning checks) behind a nesting bound, since V8's JSON.parse
// takes any depth but JSON.stringify and recursive walkers after it overflow
// the stack; and no non-finite number after validation, since ajv coerces
// "Infinity" in a query, path or body string to a number its integer and
// minimum checks pass, and SQLite then refused it.
import type { FastifyInstance } from 'fastify'
import { EdgeFleetError } from '@edgefleet/shared'

/** Deepest nesting of objects and arrays a request body may have; no route needs more than a few. */
const MAX_JSON_DEPTH = 64

/** True when `text` opens more than `max` objects/arrays inside each other (strings skipped, one pass, no recursion). */
function jsonNestsDeeper(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}

export function installJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (jsonNestsDeeper(body as string, MAX_JSON_DEPTH))
      return done(
        new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', `JSON body nests deeper than ${MAX_JSON_DEPTH} levels`),
        undefined,
      )
    // The default parser reports through `done`; what it returns is nothing to wait for.
    void parse(req, body as string, done)
  })
}

/** First non-finite number in `v` (a validated request part, at most MAX_JSON_DEPTH deep), as a path; undefined if none. */
function nonFinitePath(v: unknown, path = ''): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : path || '/'
  if (!v || typeof v !== 'object') return undefined
  for (const [k, x] of Object.entries(v)) {
    const found = nonFinitePath(x, `${path}/${k}`)
    if (found) return found
  }
  return undefined
}

export function installFiniteNumbers(app: FastifyInstance): void {
  app.addHook('preHandler', async (req) => {
    for (const [part, value] of [
      ['querystring', req.query],
      ['params', req.params],
      ['body', req.body],
    ] as const) {
      if (Buffer.isBuffer(value)) continue
      const at = nonFinitePath(value)
      if (at)
        throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', `${part}${at === '/' ? '' : at}: numbers must be finite`)
    }
  })
}
