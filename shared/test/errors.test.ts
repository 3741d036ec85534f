// The error catalogue and shared/PROTOCOL.md stay in step (CONVENTIONS: every
// code documented, none reused), and every protocol rule the code cites is
// defined in PROTOCOL.md [EF-6.1].
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { ERRORS, EdgeFleetError, codeOf, isErrorCode, type ErrorCode } from '../src/index.js'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const protocol = readFileSync(join(repo, 'shared/PROTOCOL.md'), 'utf8')
const codes = Object.keys(ERRORS) as ErrorCode[]

/** Rows of the table under "## Error codes": first cell (code) and second (status). */
function errorTable(md: string): { code: string; status: string }[] {
  const start = md.search(/^## Error codes\s*$/m)
  if (start < 0) return []
  const rest = md.slice(start).split('\n').slice(1)
  const end = rest.findIndex((l) => l.startsWith('## '))
  return (end < 0 ? rest : rest.slice(0, end))
    .filter((l) => /^\|\s*`?EF_ERR_/.test(l))
    .map((l) => {
      const cells = l.split('|').map((c) => c.trim())
      return { code: cells[1].replace(/`/g, ''), status: cells[2] }
    })
}

/** Rule ids defined by a heading or a list item that starts with the id (optionally bold). */
function definedRules(md: string): string[] {
  const out: string[] = []
  for (const line of md.split('\n')) {
    const m = /^\s*(?:#{1,6}\s+|[-*+]\s+|\d+\.\s+)(?:\*\*|`)?(EF-\d+(?:\.\d+)*)(?!\.\d|\w)/.exec(line)
    if (m) out.push(m[1])
  }
  return out
}

/** Every .ts file under dir, recursively; missing dirs yield nothing. */
function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return []
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...tsFiles(p))
    else if (name.endsWith('.ts')) out.push(p)
  }
  return out
}

/** Rule ids cited in source, with the files citing each. */
function citedRules(dirs: string[]): Map<string, string[]> {
  const cited = new Map<string, string[]>()
  for (const file of dirs.flatMap((d) => tsFiles(join(repo, d)))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/EF-\d+(?:\.\d+)*/g)) {
      const list = cited.get(m[0]) ?? []
      list.push(file.slice(repo.length))
      cited.set(m[0], list)
    }
  }
  return cited
}

describe('error catalogue', () => {
  it('codes have the EF_ERR_ shape and are unique (also ignoring case)', () => {
    for (const code of codes) expect(code).toMatch(/^EF_ERR_[A-Z0-9_]+$/)
    expect(new Set(codes.map((c) => c.toUpperCase())).size).toBe(codes.length)
  })

  it('every code has an HTTP error status and a message', () => {
    for (const code of codes) {
      expect(ERRORS[code].status, code).toBeGreaterThanOrEqual(400)
      expect(ERRORS[code].status, code).toBeLessThan(600)
      expect(ERRORS[code].message.length, code).toBeGreaterThan(5)
    }
  })

  it('messages are not reused between codes', () => {
    const messages = codes.map((c) => ERRORS[c].message)
    expect(new Set(messages).size).toBe(messages.length)
  })

  it('EdgeFleetError carries code, status and detail', () => {
    const err = new EdgeFleetError('EF_ERR_DOWNGRADE_REFUSED', '1.2.0 < 1.3.0')
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('EF_ERR_DOWNGRADE_REFUSED')
    expect(err.status).toBe(409)
    expect(err.message).toBe(`${ERRORS.EF_ERR_DOWNGRADE_REFUSED.message}: 1.2.0 < 1.3.0`)
    expect(JSON.parse(JSON.stringify(err))).toEqual({ code: 'EF_ERR_DOWNGRADE_REFUSED', message: err.message })
    expect(new EdgeFleetError('EF_ERR_INTERNAL').message).toBe('internal error')
  })

  it('codeOf and isErrorCode recognise only catalogue codes', () => {
    expect(codeOf(new EdgeFleetError('EF_ERR_STORAGE_FULL'))).toBe('EF_ERR_STORAGE_FULL')
    expect(codeOf(Object.assign(new Error('x'), { code: 'EF_ERR_MSG_JSON' }))).toBe('EF_ERR_MSG_JSON')
    expect(codeOf(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe('EF_ERR_INTERNAL')
    expect(codeOf(null)).toBe('EF_ERR_INTERNAL')
    expect(codeOf('EF_ERR_MSG_JSON')).toBe('EF_ERR_INTERNAL')
    expect(isErrorCode('EF_ERR_MSG_JSON')).toBe(true)
    expect(isErrorCode('toString')).toBe(false)
    expect(isErrorCode('EF_ERR_NOPE')).toBe(false)
  })
})

describe('PROTOCOL.md error table', () => {
  const table = errorTable(protocol)

  it('has one row per catalogue code, each exactly once', () => {
    expect(table.length).toBeGreaterThan(0)
    for (const code of codes) expect(table.filter((r) => r.code === code).length, code).toBe(1)
    expect(table).toHaveLength(codes.length)
  })

  it('states each code with its catalogue HTTP status', () => {
    for (const row of table) {
      expect(isErrorCode(row.code), row.code).toBe(true)
      expect(row.status, row.code).toBe(String(ERRORS[row.code as ErrorCode].status))
    }
  })

  it('mentions no EF_ERR_ code that is not in the catalogue', () => {
    const mentioned = new Set(protocol.match(/EF_ERR_[A-Z0-9_]+/g) ?? [])
    for (const m of mentioned) {
      // "EF_ERR_" alone or with a trailing wildcard in prose is not a code
      if (m === 'EF_ERR_' || m.endsWith('_')) continue
      expect(isErrorCode(m), m).toBe(true)
    }
  })

  it('the parser finds rows (guards against a silently empty table)', () => {
    expect(
      errorTable(
        '## Error codes\n\n| code | HTTP status |\n|---|---|\n| `EF_ERR_X` | 400 |\n\n## Next\n| `EF_ERR_Y` | 1 |',
      ),
    ).toEqual([{ code: 'EF_ERR_X', status: '400' }])
  })
})

describe('PROTOCOL.md rules', () => {
  const defined = definedRules(protocol)

  it('defines each rule id once', () => {
    const dupes = defined.filter((id, i) => defined.indexOf(id) !== i)
    expect(dupes).toEqual([])
  })

  it('defines the rule groups and the rules the brief fixed', () => {
    for (const id of [
      'EF-1',
      'EF-2',
      'EF-3',
      'EF-4',
      'EF-5',
      'EF-1.2',
      'EF-1.3',
      'EF-1.4',
      'EF-2.1',
      'EF-2.2',
      'EF-2.3',
      'EF-2.3.2',
      'EF-2.4',
      'EF-2.5',
      'EF-2.6',
      'EF-2.6.2',
      'EF-2.7',
      'EF-3.4',
      'EF-4.6',
    ]) {
      expect(defined, id).toContain(id)
    }
  })

  it('defines every rule id cited in shared/src, hub/src and agent/src', () => {
    const cited = citedRules(['shared/src', 'hub/src', 'agent/src'])
    expect(cited.size).toBeGreaterThan(0)
    const undefinedIds = [...cited]
      .filter(([id]) => !defined.includes(id))
      .map(([id, files]) => `${id} (cited in ${[...new Set(files)].join(', ')})`)
    expect(undefinedIds).toEqual([])
  })

  it('the parser accepts headings and list items only, and whole ids only', () => {
    // ids spelled via `r` so a repository-wide grep for cited rule ids does not pick these up
    const r = ['EF', '9'].join('-')
    const md = `## ${r} Things\n- **${r}.1** a\n  - ${r}.1.1 b\n1. ${r}.2 c\nsee ${r}.3 in prose\n- ${r}.40x`
    expect(definedRules(md)).toEqual([r, `${r}.1`, `${r}.1.1`, `${r}.2`])
  })
})
