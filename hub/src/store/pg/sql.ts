// The store's SQL, written once for both engines, made PostgreSQL's: `?`
// placeholders become `$1…$n` (never inside quotes), and camelCase column
// aliases are quoted, because PostgreSQL folds unquoted identifiers to lower
// case and the store reads rows by their alias (`AS maxStatusAt`).

/** `?` → `$n` outside string literals and quoted identifiers; camelCase aliases quoted. */
export function toPostgres(sql: string): string {
  let out = ''
  let placeholders = 0
  let quote: string | null = null
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null
      out += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      out += ch
    } else if (ch === '?') {
      out += `$${++placeholders}`
    } else {
      out += ch
    }
  }
  return out.replace(/\bAS\s+([a-z][a-z0-9_]*[A-Z][A-Za-z0-9_]*)\b/g, 'AS "$1"')
}

/** better-sqlite3 spreads an array argument into positional parameters; so does the PostgreSQL store. */
export function flattenParams(params: readonly unknown[]): unknown[] {
  const out: unknown[] = []
  for (const p of params) {
    if (Array.isArray(p)) out.push(...(p as unknown[]))
    else out.push(p === undefined ? null : p)
  }
  return out
}
