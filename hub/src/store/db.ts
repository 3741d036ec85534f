// The hub's database handle: one small synchronous interface (`Db`) that every
// store module uses, with two implementations. SQLite (better-sqlite3, the
// embedded default; this is the only hub module that imports it): one file
// per hub, WAL mode, schema migrations keyed by PRAGMA user_version.
// PostgreSQL (`--store postgresql://…`): ./pg/bridge.ts, the same interface
// over a connection a worker thread owns.
import Database from 'better-sqlite3'
import { MIGRATIONS } from './migrations.js'
import { privateDatabase } from '../private-files.js'

/** What a write statement did. */
export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number
}

/**
 * A prepared statement taking positional `?` parameters (an array argument is
 * spread, as better-sqlite3 does). Rows come back as plain objects keyed by
 * column name, integers as numbers.
 */
export interface Statement {
  run(...params: unknown[]): RunResult
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
  iterate(...params: unknown[]): Iterable<unknown>
}

/** SQL both engines accept is written once; the few that differ branch on `dialect`. */
type Dialect = 'sqlite' | 'postgres'

export interface Db {
  readonly dialect: Dialect
  /**
   * Where a second connection opens the same database (the telemetry writer
   * thread, EF-9.1): the SQLite file's path or the PostgreSQL URL; undefined
   * for an in-memory SQLite database.
   */
  readonly location: string | undefined
  prepare(sql: string): Statement
  /** Runs one or more statements without parameters. */
  exec(sql: string): void
  /**
   * Runs `fn` in one transaction that takes the write lock first (SQLite:
   * IMMEDIATE, see openDb; PostgreSQL: BEGIN on the one connection, nothing
   * interleaved) and returns its result; a throw rolls it back. Nested calls
   * are savepoints.
   */
  transaction<T>(fn: () => T): T
  /**
   * Caps the database's size so growth past it fails as a full disk would
   * (SQLite's max_page_count; tests of a full disk). PostgreSQL's size is its
   * operator's: a no-op there.
   */
  capSize(maxBytes: number): void
  close(): void
}

export interface OpenDbOptions {
  /** Path of the database file; ':memory:' for unit tests. */
  path: string
}

/** better-sqlite3 behind the Db interface. */
export class SqliteDb implements Db {
  readonly dialect = 'sqlite'

  constructor(readonly raw: Database.Database) {}

  get location(): string | undefined {
    return this.raw.memory ? undefined : this.raw.name
  }

  prepare(sql: string): Statement {
    return this.raw.prepare(sql)
  }

  exec(sql: string): void {
    this.raw.exec(sql)
  }

  transaction<T>(fn: () => T): T {
    return this.raw.transaction(fn).immediate()
  }

  capSize(maxBytes: number): void {
    const pageSize = this.raw.pragma('page_size', { simple: true }) as number
    this.raw.pragma(`max_page_count = ${Math.max(1, Math.floor(maxBytes / pageSize))}`)
  }

  close(): void {
    this.raw.close()
  }
}

export function openDb(opts: OpenDbOptions): SqliteDb {
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
  return new SqliteDb(db)
}

export function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v])
      db.pragma(`user_version = ${v + 1}`)
    }).immediate()
  }
}

/**
 * The column that orders a table's rows by insertion, for cursors: SQLite's
 * rowid, the `seq BIGSERIAL` column PostgreSQL's schema gives such tables.
 */
export const rowid = (db: Db): string => (db.dialect === 'sqlite' ? 'rowid' : 'seq')

/** Whether `err` is a duplicate primary or unique key, from either engine. */
export function isDuplicateKey(err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  // 23505: PostgreSQL's unique_violation.
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505'
}
