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
  const walk = (node: unknown, depth: number, path: string): Selector => {
    if (++nodes > MAX_NODES) throw bad(`more than ${MAX_NODES} nodes`)
    if (depth > MAX_DEPTH) throw bad(`${path}: deeper than ${MAX_DEPTH}`)
    if (typeof node !== 'object' || node === null || Array.isArray(node)) throw bad(`${path}: expected an object`)
    const keys = Object.keys(node)
    if (keys.length !== 1)
      throw bad(
        `${path}: expected exactly one of profile, tag, region, devices, and, or, not (got ${keys.join(', ') || 'nothing'})`,
      )
    const [key] = keys
    const value = (node as Record<string, unknown>)[key]
    switch (key) {
      case 'profile':
      case 'region':
        if (typeof value !== 'string' || !isValidId(value))
          throw bad(`${path}/${key}: ${JSON.stringify(value)} is not a valid id`)
        return key === 'profile' ? { profile: value } : { region: value }
      case 'tag':
        if (typeof value !== 'string') throw bad(`${path}/tag: expected "key=value"`)
        splitTag(value)
        return { tag: value }
      case 'devices':
        if (!Array.isArray(value) || value.length === 0 || value.length > 10_000)
          throw bad(`${path}/devices: expected 1-10000 device ids`)
        for (const id of value)
          if (typeof id !== 'string' || !isValidId(id))
            throw bad(`${path}/devices: ${JSON.stringify(id)} is not a valid device id`)
        return { devices: [...new Set(value as string[])] }
      case 'and':
      case 'or': {
        if (!Array.isArray(value) || value.length === 0) throw bad(`${path}/${key}: expected a non-empty list`)
        const list = value.map((c, i) => walk(c, depth + 1, `${path}/${key}/${i}`))
        return key === 'and' ? { and: list } : { or: list }
      }
      case 'not':
        return { not: walk(value, depth + 1, `${path}/not`) }
      default:
        throw bad(`${path}: unknown selector ${JSON.stringify(key)}`)
    }
  }
  return walk(input, 1, '')
}

/** Parses the text form: atoms `profile=P`, `tag=k=v`, `region=R`, `device=ID`, `devices=A,B`; `not` > `and` > `or`; parentheses. */
export function parseSelector(text: string): Selector {
  if (text.length > 4096) throw bad('longer than 4096 characters')
  const tokens = text.match(/\(|\)|[^\s()]+/g) ?? []
  let pos = 0
  const peek = () => tokens[pos]
  const atom = (): Selector => {
    const token = tokens[pos++]
    if (token === undefined) throw bad('unexpected end of selector')
    if (token === '(') {
      const inner = or()
      if (tokens[pos++] !== ')') throw bad('missing )')
      return inner
    }
    if (token.toLowerCase() === 'not') return { not: atom() }
    const eq = token.indexOf('=')
    const key = token.slice(0, eq)
    const val = token.slice(eq + 1)
    if (eq <= 0) throw bad(`${JSON.stringify(token)} is not key=value (keys: profile, tag, region, device, devices)`)
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
      pos++
      list.push(atom())
    }
    return list.length === 1 ? list[0] : { and: list }
  }
  const or = (): Selector => {
    const list = [and()]
    while (peek()?.toLowerCase() === 'or') {
      pos++
      list.push(and())
    }
    return list.length === 1 ? list[0] : { or: list }
  }
  if (tokens.length === 0) throw bad('empty selector')
  const tree = or()
  if (pos !== tokens.length) throw bad(`unexpected ${JSON.stringify(tokens[pos])}`)
  return normalizeSelector(tree)
}

/** A selector from the API: text or tree. */
export function toSelector(input: unknown): Selector {
  return typeof input === 'string' ? parseSelector(input) : normalizeSelector(input)
}

export function matches(sel: Selector, device: MatchableDevice): boolean {
  if ('profile' in sel) return device.profile === sel.profile
  if ('region' in sel) return device.tags.region === sel.region
  if ('tag' in sel) {
    const [k, v] = splitTag(sel.tag)
    return device.tags[k] === v
  }
  if ('devices' in sel) return sel.devices.includes(device.id)
  if ('and' in sel) return sel.and.every((s) => matches(s, device))
  if ('or' in sel) return sel.or.some((s) => matches(s, device))
  return !matches(sel.not, device)
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
