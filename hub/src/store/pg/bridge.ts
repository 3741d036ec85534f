// The PostgreSQL store behind the same synchronous Db interface as SQLite:
// a worker thread (./worker.ts) owns the connection; each query is posted to
// it and the main thread blocks on a SharedArrayBuffer flag (Atomics.wait)
// until the answer is on the port, then reads it with receiveMessageOnPort
// (the technique of synckit). The hub's store semantics stay single-threaded:
// one connection, one statement at a time, a transaction is BEGIN…COMMIT with
// nothing interleaved. The price is one thread hand-off plus one network
// round trip per statement, measured in docs/SCALE.md.
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { EdgeFleetError } from '@edgefleet/shared'
import type { Db, RunResult, Statement } from '../db.js'
import { flattenParams, toPostgres } from './sql.js'
import { migratePostgres } from './migrations.js'

/** What the worker is started with. */
export interface BridgeData {
  url: string
  port: MessagePort
  signal: SharedArrayBuffer
  connectTimeoutMs: number
}

export interface BridgeRequest {
  sql: string
  params: unknown[]
  /** Named (server-side prepared) statement, parsed once per connection. */
  name?: string
}

export type BridgeReply =
  { rows: Record<string, unknown>[]; changes: number } | { error: { code: string; message: string } }

export interface PgDbOptions {
  /** How long one statement may take before the store reports itself unavailable. */
  queryTimeoutMs?: number
  /** How long opening a connection may take. */
  connectTimeoutMs?: number
}

function workerUrl(): URL {
  const here = new URL('./worker.js', import.meta.url)
  if (existsSync(fileURLToPath(here))) return here
  return new URL('../../../dist/store/pg/worker.js', import.meta.url)
}

class PgStatement implements Statement {
  constructor(
    private readonly db: PgDb,
    private readonly sql: string,
    private readonly name: string,
  ) {}

  run(...params: unknown[]): RunResult {
    return { changes: this.db.query(this.sql, flattenParams(params), this.name).changes }
  }

  get(...params: unknown[]): unknown {
    return this.db.query(this.sql, flattenParams(params), this.name).rows[0]
  }

  all(...params: unknown[]): unknown[] {
    return this.db.query(this.sql, flattenParams(params), this.name).rows
  }

  /** Materialized: the rows of one answer (the store's iterations are bounded by their queries). */
  iterate(...params: unknown[]): Iterable<unknown> {
    return this.all(...params)
  }
}

export class PgDb implements Db {
  readonly dialect = 'postgres'
  private readonly worker: Worker
  private readonly port: MessagePort
  private readonly signal = new Int32Array(new SharedArrayBuffer(4))
  private readonly names = new Map<string, string>()
  private readonly queryTimeoutMs: number
  private depth = 0
  private closed = false

  constructor(
    readonly location: string,
    opts: PgDbOptions = {},
  ) {
    this.queryTimeoutMs = opts.queryTimeoutMs ?? 30_000
    const channel = new MessageChannel()
    this.port = channel.port1
    this.worker = new Worker(workerUrl(), {
      workerData: {
        url: location,
        port: channel.port2,
        signal: this.signal.buffer,
        connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
      } satisfies BridgeData,
      transferList: [channel.port2],
    })
    // The worker must not keep the hub's process alive on its own.
    this.worker.unref()
  }

  /** One statement on the worker's connection, waited for synchronously. */
  query(sql: string, params: unknown[], name?: string): { rows: Record<string, unknown>[]; changes: number } {
    if (this.closed) throw new TypeError('the PostgreSQL store is closed')
    Atomics.store(this.signal, 0, 0)
    this.port.postMessage({ sql, params, name } satisfies BridgeRequest)
    const waited = Atomics.wait(this.signal, 0, 0, this.queryTimeoutMs)
    const message = receiveMessageOnPort(this.port)
    if (waited === 'timed-out' || !message)
      throw new EdgeFleetError('EF_ERR_STORE_UNAVAILABLE', `no answer from PostgreSQL in ${this.queryTimeoutMs} ms`)
    const reply = message.message as BridgeReply
    if ('error' in reply) {
      if (reply.error.code === 'EF_ERR_STORE_UNAVAILABLE')
        throw new EdgeFleetError('EF_ERR_STORE_UNAVAILABLE', reply.error.message)
      throw Object.assign(new Error(reply.error.message), { code: reply.error.code })
    }
    return reply
  }

  prepare(sql: string): Statement {
    const text = toPostgres(sql)
    let name = this.names.get(text)
    if (!name) {
      name = `ef${this.names.size + 1}`
      this.names.set(text, name)
    }
    return new PgStatement(this, text, name)
  }

  exec(sql: string): void {
    this.query(sql, [])
  }

  transaction<T>(fn: () => T): T {
    const level = this.depth
    const savepoint = level > 0 ? `ef_sp${level}` : null
    this.exec(savepoint ? `SAVEPOINT ${savepoint}` : 'BEGIN')
    this.depth = level + 1
    try {
      const result = fn()
      this.exec(savepoint ? `RELEASE SAVEPOINT ${savepoint}` : 'COMMIT')
      return result
    } catch (err) {
      try {
        this.exec(savepoint ? `ROLLBACK TO SAVEPOINT ${savepoint}` : 'ROLLBACK')
      } catch {
        // The connection is gone: the server rolled the transaction back itself.
      }
      throw err
    } finally {
      this.depth = level
    }
  }

  capSize(): void {
    // PostgreSQL's size is its operator's business (tablespaces, quotas), not the hub's.
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.port.postMessage({ close: true })
    void this.worker.terminate()
  }
}

/** Opens the store on `url` and brings its schema to the latest version; throws EF_ERR_STORE_UNAVAILABLE when unreachable. */
export function openPostgres(url: string, opts: PgDbOptions = {}): PgDb {
  const db = new PgDb(url, opts)
  try {
    migratePostgres(db)
  } catch (err) {
    db.close()
    throw err
  }
  return db
}
