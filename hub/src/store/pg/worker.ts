// The PostgreSQL store's connection thread: it owns one node-postgres client
// and answers the main thread's queries one at a time (./bridge.ts blocks on
// a shared flag until the answer is posted). It reconnects by itself: a query
// that finds no connection opens one, and one that cannot is answered
// EF_ERR_STORE_UNAVAILABLE. A connection lost inside a transaction poisons
// that transaction: every later query in it is refused until the main thread
// rolls it back, so nothing of it lands on a fresh connection in autocommit.
import { workerData, type MessagePort } from 'node:worker_threads'
import pg from 'pg'
import type { BridgeData, BridgeReply, BridgeRequest } from './bridge.js'

// Integers and numerics come back as numbers and BYTEA as Buffer, as from SQLite:
// int8 (count(*), BIGINT columns: millisecond timestamps fit 2^53) and numeric (sum of BIGINT).
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v))

const data = workerData as BridgeData
const port: MessagePort = data.port
const signal = new Int32Array(data.signal)

let client: pg.Client | null = null
/** A transaction is open on the current connection (BEGIN answered, no COMMIT/ROLLBACK yet). */
let inTransaction = false
/** The connection died inside a transaction: refuse until the main thread's ROLLBACK. */
let poisoned = false

/** SQLSTATE classes that mean the server or the connection went away, not that the statement was wrong. */
function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  if (typeof code !== 'string') return true // socket errors, "Connection terminated", timeouts
  return /^(08|57P0[123])/.test(code) || /^E[A-Z]+$/.test(code) // 08xxx, admin/crash shutdown, cannot connect now, ECONNREFUSED…
}

function dropConnection(): void {
  const old = client
  client = null
  if (inTransaction) poisoned = true
  inTransaction = false
  old?.end().catch(() => undefined)
}

async function connection(): Promise<pg.Client> {
  if (client) return client
  const next = new pg.Client({ connectionString: data.url, connectionTimeoutMillis: data.connectTimeoutMs })
  // An idle connection the server closes (restart) emits 'error': forget it, the next query reconnects.
  next.on('error', () => {
    if (client === next) dropConnection()
  })
  await next.connect()
  client = next
  return next
}

function unavailable(err: unknown): BridgeReply {
  return { error: { code: 'EF_ERR_STORE_UNAVAILABLE', message: `PostgreSQL: ${(err as Error).message}` } }
}

async function answer(req: BridgeRequest): Promise<BridgeReply> {
  const verb = req.sql.trimStart().slice(0, 8).toUpperCase()
  if (poisoned) {
    if (verb.startsWith('ROLLBACK')) {
      poisoned = false
      return { rows: [], changes: 0 }
    }
    return unavailable(new Error('the connection was lost inside this transaction; it was rolled back'))
  }
  let conn: pg.Client
  try {
    conn = await connection()
  } catch (err) {
    return unavailable(err)
  }
  try {
    const result = req.name
      ? await conn.query({ name: req.name, text: req.sql, values: req.params })
      : await conn.query(req.sql, req.params)
    if (verb.startsWith('BEGIN')) inTransaction = true
    else if (verb.startsWith('COMMIT') || verb.startsWith('ROLLBACK')) inTransaction = false
    // A multi-statement exec answers an array of results.
    const last = Array.isArray(result) ? (result.at(-1) as pg.QueryResult | undefined) : result
    return { rows: (last?.rows ?? []) as Record<string, unknown>[], changes: last?.rowCount ?? 0 }
  } catch (err) {
    if (isConnectionLoss(err)) {
      dropConnection()
      return unavailable(err)
    }
    const e = err as { message: string; code?: string; detail?: string }
    return { error: { code: e.code ?? 'EF_ERR_INTERNAL', message: e.detail ? `${e.message}: ${e.detail}` : e.message } }
  }
}

port.on('message', (req: BridgeRequest | { close: true }) => {
  if ('close' in req) {
    void (client?.end() ?? Promise.resolve()).finally(() => port.close())
    return
  }
  void answer(req).then((reply) => {
    // The reply is queued on the port before the flag wakes the main thread, which reads it synchronously.
    port.postMessage(reply)
    Atomics.store(signal, 0, 1)
    Atomics.notify(signal, 0)
  })
})
