// Owner-only files and folders: data folders 0700, databases (with their WAL
// and shared-memory files) and keys 0600, so other local users read neither
// secrets nor fleet data. Modes are set on creation and tightened on files
// that already exist (e.g. a data folder made by a packaging script).
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs'

/** Creates `dir` (and missing parents) 0700, and narrows an existing `dir` to 0700. */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
}

/**
 * Makes an SQLite database file 0600 before SQLite opens it: SQLite gives the
 * -wal and -shm files it creates the database file's mode. Existing -wal/-shm
 * files (from an older version) are narrowed too.
 */
export function privateDatabase(path: string): void {
  if (path === ':memory:' || path === '') return
  closeSync(openSync(path, 'a', 0o600))
  for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600)
}
