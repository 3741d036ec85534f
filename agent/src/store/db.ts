// The agent's SQLite file: the only agent module that imports better-sqlite3.
// Holds the outbox (events, telemetry, samples waiting for a PUBACK) and the
// log of commands already executed [EF-2.3.2].
import Database from 'better-sqlite3'
import { privateDatabase } from '../private-files.js'

const MIGRATIONS = [
  `CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, kind TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE TABLE cmds (id TEXT PRIMARY KEY, status TEXT NOT NULL, result TEXT, updated_at INTEGER NOT NULL);
   CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
]

export interface OutboxRow {
  id: number
  topic: string
  payload: Buffer
  kind: string
}

const isFull = (err: unknown) => (err as { code?: string }).code === 'SQLITE_FULL'

export class AgentDb {
  private readonly db: Database.Database
  /** Queued rows dropped to make room under the size cap since this process opened the db [EF-7.3]. */
  spaceDrops = 0

  constructor(path: string) {
    privateDatabase(path) // 0600, and so its -wal and -shm files
    this.db = new Database(path)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    const v = this.db.pragma('user_version', { simple: true }) as number
    for (let i = v; i < MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[i])
        this.db.pragma(`user_version = ${i + 1}`)
      })()
    }
  }

  /**
   * Appends to the outbox; when over `maxRows` the oldest telemetry rows are
   * evicted first, and every eviction is counted. Returns the rows evicted.
   */
  enqueue(topic: string, payload: Buffer, kind: string, now: number, maxRows: number): number {
    return this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO outbox (topic, payload, kind, created_at) VALUES (?,?,?,?)')
        .run(topic, payload, kind, now)
      const n = (this.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n
      if (n <= maxRows) return 0
      const excess = n - maxRows
      const r = this.db
        .prepare(
          `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY CASE kind WHEN 'event' THEN 1 ELSE 0 END, id LIMIT ?)`,
        )
        .run(excess)
      this.bump('outbox_evicted', r.changes)
      return r.changes
    })()
  }

  peek(limit: number, afterId = 0): OutboxRow[] {
    return this.db
      .prepare('SELECT id, topic, payload, kind FROM outbox WHERE id > ? ORDER BY id LIMIT ?')
      .all(afterId, limit) as OutboxRow[]
  }

  ack(id: number): void {
    this.db.prepare('DELETE FROM outbox WHERE id = ?').run(id)
  }

  outboxSize(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n
  }

  bump(name: string, by = 1): void {
    this.db
      .prepare(
        'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value',
      )
      .run(name, by)
  }

  counter(name: string): number {
    return (
      (this.db.prepare('SELECT value FROM counters WHERE name = ?').get(name) as { value: number } | undefined)
        ?.value ?? 0
    )
  }

  cmdStatus(id: string): { status: string; result: string | null } | undefined {
    return this.db.prepare('SELECT status, result FROM cmds WHERE id = ?').get(id) as
      { status: string; result: string | null } | undefined
  }

  setCmd(id: string, status: 'running' | 'done', result: unknown, now: number): void {
    // The command log outranks queued telemetry: a device whose db filled up while offline must still run the hub's commands.
    this.withRoom(() =>
      this.db
        .prepare(
          'INSERT INTO cmds (id, status, result, updated_at) VALUES (?,?,?,?) ON CONFLICT(id) DO UPDATE SET status=excluded.status, result=excluded.result, updated_at=excluded.updated_at',
        )
        .run(id, status, result === undefined ? null : JSON.stringify(result), now),
    )
  }

  /**
   * Runs a write; when the size cap refuses it (SQLITE_FULL), drops the oldest
   * queued telemetry/samples (counted in `spaceDrops`) and tries again, a few
   * times. Throws the SQLITE_FULL error when no room can be made.
   */
  withRoom<T>(write: () => T, attempts = 4): T {
    for (let i = 0; ; i++) {
      try {
        return write()
      } catch (err) {
        if (!isFull(err) || i >= attempts) throw err
        const n = this.evictOldest(8)
        this.spaceDrops += n
        if (n === 0) throw err
      }
    }
  }

  /**
   * Caps the database file at about `bytes` (SQLite max_page_count) [EF-7.3]:
   * past it a write fails with SQLITE_FULL instead of filling the device.
   */
  setMaxBytes(bytes: number): void {
    const pageSize = this.db.pragma('page_size', { simple: true }) as number
    const pages = Math.max(16, Math.floor(bytes / pageSize))
    this.db.pragma(`max_page_count = ${pages}`)
  }

  /** Evicts the `n` oldest rows that are not events (telemetry, samples first); returns rows removed, counted as evictions. */
  evictOldest(n: number): number {
    const r = this.db
      .prepare(`DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind <> 'event' ORDER BY id LIMIT ?)`)
      .run(n)
    return r.changes
  }

  /** Bytes of payload queued for one kind (e.g. samples, for the on-disk capture cap). */
  queuedBytes(kind: string): number {
    return (
      this.db.prepare('SELECT coalesce(sum(length(payload)), 0) AS n FROM outbox WHERE kind = ?').get(kind) as {
        n: number
      }
    ).n
  }

  /** Rows queued per kind. */
  queuedByKind(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const r of this.db.prepare('SELECT kind, count(*) AS n FROM outbox GROUP BY kind').all() as {
      kind: string
      n: number
    }[])
      out[r.kind] = r.n
    return out
  }

  close(): void {
    this.db.close()
  }
}
