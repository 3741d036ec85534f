// Rollout target selectors [EF-8.2]: a JSON tree of profile / tag / region /
// explicit ids combined with and / or / not, or the same as a short text
// expression (`tag=fleet=demo and not region=us`). One normal form (the
// tree) is stored and matched.
import { EdgeFleetError, isValidId } from '@edgefleet/shared'
import { TAG_KEY } from '../store/devices.js'

export type Selector =
  | { profile: string }
  | { tag: string }
  | { region: string }
  | { devices: string[] }
  | { and: Selector[] }
  | { or: Selector[] }
  | { not: Selector }

export interface MatchableDevice {
  id: string
  profile: string
  tags: Record<string, string>
}

const MAX_DEPTH = 8
const MAX_NODES = 256

const bad = (why: string): EdgeFleetError => new EdgeFleetError('EF_ERR_SELECTOR_INVALID', why)

function splitTag(s: string): [string, string] {
  const i = s.indexOf('=')
  const k = s.slice(0, i)
  const v = s.slice(i + 1)
  if (i <= 0 || !TAG_KEY.test(k) || v.length === 0 || v.length > 256)
    throw bad(`tag must be key=value, got ${JSON.stringify(s)}`)
  return [k, v]
}

/** Checks a tree against EF-8.2 and returns it in normal form (nothing extra kept). */
function normalizeSelector(input: unknown): Selector {
  let nodes = 0
  const walk = (x: unknown, depth: number, path: string): Selector => {
    if (++nodes > MAX_NODES) throw bad(`more than ${MAX_NODES} nodes`)
    if (depth > MAX_DEPTH) throw bad(`${path}: deeper than ${MAX_DEPTH}`)
    if (typeof x !== 'object' || x === null || Array.isArray(x)) throw bad(`${path}: expected an object`)
    const keys = Object.keys(x)
    if (keys.length !== 1)
      throw bad(
        `${path}: expected exactly one of profile, tag, region, devices, and, or, not (got ${keys.join(', ') || 'nothing'})`,
      )
    const [k] = keys
    const v = (x as Record<string, unknown>)[k]
    switch (k) {
      case 'profile':
      case 'region':
        if (typeof v !== 'string' || !isValidId(v)) throw bad(`${path}/${k}: ${JSON.stringify(v)} is not a valid id`)
        return k === 'profile' ? { profile: v } : { region: v }
      case 'tag':
        if (typeof v !== 'string') throw bad(`${path}/tag: expected "key=value"`)
        splitTag(v)
        return { tag: v }
      case 'devices':
        if (!Array.isArray(v) || v.length === 0 || v.length > 10_000)
          throw bad(`${path}/devices: expected 1-10000 device ids`)
        for (const id of v)
          if (typeof id !== 'string' || !isValidId(id))
            throw bad(`${path}/devices: ${JSON.stringify(id)} is not a valid device id`)
        return { devices: [...new Set(v as string[])] }
      case 'and':
      case 'or': {
        if (!Array.isArray(v) || v.length === 0) throw bad(`${path}/${k}: expected a non-empty list`)
        const list = v.map((c, i) => walk(c, depth + 1, `${path}/${k}/${i}`))
        return k === 'and' ? { and: list } : { or: list }
      }
      case 'not':
        return { not: walk(v, depth + 1, `${path}/not`) }
      default:
        throw bad(`${path}: unknown selector ${JSON.stringify(k)}`)
    }
  }
  return walk(input, 1, '')
}

/** Parses the text form: atoms `profile=P`, `tag=k=v`, `region=R`, `device=ID`, `devices=A,B`; `not` > `and` > `or`; parentheses. */
export function parseSelector(text: string): Selector {
  if (text.length > 4096) throw bad('longer than 4096 characters')
  const tokens = text.match(/\(|\)|[^\s()]+/g) ?? []
  let i = 0
  const peek = () => tokens[i]
  const atom = (): Selector => {
    const t = tokens[i++]
    if (t === undefined) throw bad('unexpected end of selector')
    if (t === '(') {
      const inner = or()
      if (tokens[i++] !== ')') throw bad('missing )')
      return inner
    }
    if (t.toLowerCase() === 'not') return { not: atom() }
    const eq = t.indexOf('=')
    const key = t.slice(0, eq)
    const val = t.slice(eq + 1)
    if (eq <= 0) throw bad(`${JSON.stringify(t)} is not key=value (keys: profile, tag, region, device, devices)`)
    switch (key) {
      case 'profile':
        return { profile: val }
      case 'region':
        return { region: val }
      case 'tag':
        return { tag: val }
      case 'device':
        return { devices: [val] }
      case 'devices':
        return { devices: val.split(',').filter(Boolean) }
      default:
        throw bad(`unknown key ${JSON.stringify(key)} (profile, tag, region, device, devices)`)
    }
  }
  const and = (): Selector => {
    const list = [atom()]
    while (peek()?.toLowerCase() === 'and') {
      i++
      list.push(atom())
    }
    return list.length === 1 ? list[0] : { and: list }
  }
  const or = (): Selector => {
    const list = [and()]
    while (peek()?.toLowerCase() === 'or') {
      i++
      list.push(and())
    }
    return list.length === 1 ? list[0] : { or: list }
  }
  if (tokens.length === 0) throw bad('empty selector')
  const tree = or()
  if (i !== tokens.length) throw bad(`unexpected ${JSON.stringify(tokens[i])}`)
  return normalizeSelector(tree)
}

/** A selector from the API: text or tree. */
export function toSelector(input: unknown): Selector {
  return typeof input === 'string' ? parseSelector(input) : normalizeSelector(input)
}

export function matches(sel: Selector, d: MatchableDevice): boolean {
  if ('profile' in sel) return d.profile === sel.profile
  if ('region' in sel) return d.tags.region === sel.region
  if ('tag' in sel) {
    const [k, v] = splitTag(sel.tag)
    return d.tags[k] === v
  }
  if ('devices' in sel) return sel.devices.includes(d.id)
  if ('and' in sel) return sel.and.every((s) => matches(s, d))
  if ('or' in sel) return sel.or.some((s) => matches(s, d))
  return !matches(sel.not, d)
}

/** The text form, for lists and the CLI. */
export function selectorText(sel: Selector): string {
  if ('profile' in sel) return `profile=${sel.profile}`
  if ('region' in sel) return `region=${sel.region}`
  if ('tag' in sel) return `tag=${sel.tag}`
  if ('devices' in sel)
    return sel.devices.length === 1 ? `device=${sel.devices[0]}` : `devices=${sel.devices.join(',')}`
  if ('and' in sel) return sel.and.map((s) => ('or' in s ? `(${selectorText(s)})` : selectorText(s))).join(' and ')
  if ('or' in sel) return sel.or.map(selectorText).join(' or ')
  const inner = selectorText(sel.not)
  return 'and' in sel.not || 'or' in sel.not ? `not (${inner})` : `not ${inner}`
}
