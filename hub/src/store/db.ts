// The hub's SQLite store: the only hub module that imports better-sqlite3.
// One file per hub, WAL mode, schema migrations keyed by PRAGMA user_version.
import Database from 'better-sqlite3'
import { MIGRATIONS } from './migrations.js'
import { privateDatabase } from '../private-files.js'

export type Db = Database.Database
/** A prepared statement taking positional parameters. */
export type Statement = Database.Statement

export interface OpenDbOptions {
  /** Path of the database file; ':memory:' for unit tests. */
  path: string
}

export function openDb(opts: OpenDbOptions): Db {
  privateDatabase(opts.path) // 0600, and so its -wal and -shm files
  const db = new Database(opts.path)
  db.pragma('journal_mode = WAL')
  // NORMAL is durable across process crashes in WAL mode; only an OS crash may lose the last commits.
  db.pragma('synchronous = NORMAL')
  db.pragma('foreign_keys = ON')
  // A second connection (the telemetry writer thread, EF-9.1) commits concurrently: every
  // multi-statement transaction in the hub is IMMEDIATE (takes the write lock first and waits
  // for it), because a deferred one that read before writing fails with SQLITE_BUSY instead.
  db.pragma('busy_timeout = 5000')
  migrate(db)
  return db
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v])
      db.pragma(`user_version = ${v + 1}`)
    }).immediate()
  }
}
