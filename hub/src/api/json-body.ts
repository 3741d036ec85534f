// The JSON body parser of the hub's API: fastify's own (prototype-poisoning
// checks included) behind a nesting bound [EF-6.2.1]. V8's JSON.parse takes
// any depth, but JSON.stringify and every recursive walker after it overflow
// the stack on a body nested some thousands deep, which was a 500.
import type { FastifyInstance } from 'fastify'
import { EdgeFleetError } from '@edgefleet/shared'

/** Deepest nesting of objects and arrays a request body may have; no route needs more than a few. */
export const MAX_JSON_DEPTH = 64

/** True when `text` opens more than `max` objects/arrays inside each other (strings skipped, one pass, no recursion). */
export function jsonNestsDeeper(text: string, max: number): boolean {
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
    parse(req, body as string, done)
  })
}
