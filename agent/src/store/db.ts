// The agent's state file, agent.db: the outbox (events, telemetry, samples
// waiting for a PUBACK), the log of commands already executed [EF-2.3.2] and
// a few counters. Kept in an append-only journal (journal.ts) rather than
// SQLite: no native addon, so the same package runs on every architecture
// and nothing is compiled on a device [EF-7.4]. Queued payloads stay on
// disk; memory holds one small entry per queued row.
import { closeSync, openSync, readSync, renameSync } from 'node:fs'
import { EdgeFleetError } from '@edgefleet/shared'
import { Journal, type Frame } from './journal.js'

export interface OutboxRow {
  id: number
  topic: string
  payload: Buffer
  kind: string
}

type Header =
  | { o: 'q'; id: number; t: string; k: string; a: number }
  | { o: 'd'; ids: number[] }
  | { o: 'c'; n: string; v: number }
  | { o: 'm'; id: string; s: 'running' | 'done'; r: string | null; a: number }

interface Row {
  topic: string
  kind: string
  at: number
  frame: Frame<Header>
}

interface CmdEntry {
  status: string
  result: string | null
  at: number
  size: number
}

/** A write refused for space: the size cap [EF-7.3] or the disk itself. */
const isFull = (err: unknown) => {
  const code = (err as { code?: string }).code
  return code === 'EF_ERR_STORAGE_FULL' || code === 'ENOSPC'
}

/** Compaction runs once reclaimable bytes pass both this and the live bytes. */
const COMPACT_MIN_DEAD = 1024 * 1024

/** An agent.db written by SQLite (agent ≤ 0.1.0) starts with this. */
const SQLITE_MAGIC = 'SQLite format 3\0'

export class AgentDb {
  private readonly journal: Journal<Header>
  private readonly rows = new Map<number, Row>()
  private readonly cmds = new Map<string, CmdEntry>()
  private readonly counters = new Map<string, { value: number; size: number }>()
  private readonly bytesByKind = new Map<string, number>()
  private nextId = 1
  /** Bytes of frames still describing current state; the rest of the file is reclaimable. */
  private liveBytes = 0
  private maxBytes = 0
  /** Queued rows dropped to make room under the size cap since this process opened the db [EF-7.3]. */
  spaceDrops = 0
  /** Bytes of a torn or corrupt tail cut off at open (0 after a clean shutdown). */
  readonly truncatedBytes: number

  constructor(path: string) {
    moveAsideSqlite(path)
    this.journal = new Journal<Header>(path)
    this.truncatedBytes = this.journal.replay((f) => this.apply(f))
  }

  private apply(frame: Frame<Header>): void {
    const header = frame.header
    if (header.o === 'q') {
      this.rows.set(header.id, { topic: header.t, kind: header.k, at: header.a, frame: frame })
      this.bytesByKind.set(header.k, (this.bytesByKind.get(header.k) ?? 0) + frame.payloadLength)
      this.liveBytes += frame.size
      this.nextId = Math.max(this.nextId, header.id + 1)
    } else if (header.o === 'd') {
      for (const id of header.ids) this.drop(id)
    } else if (header.o === 'c') {
      this.liveBytes += frame.size - (this.counters.get(header.n)?.size ?? 0)
      this.counters.set(header.n, { value: header.v, size: frame.size })
    } else {
      this.liveBytes += frame.size - (this.cmds.get(header.id)?.size ?? 0)
      this.cmds.set(header.id, { status: header.s, result: header.r, at: header.a, size: frame.size })
    }
  }

  private drop(id: number): boolean {
    const r = this.rows.get(id)
    if (!r) return false
    this.rows.delete(id)
    this.bytesByKind.set(r.kind, (this.bytesByKind.get(r.kind) ?? 0) - r.frame.payloadLength)
    this.liveBytes -= r.frame.size
    return true
  }

  /**
   * Appends one frame under the size cap: reclaims dead frames first when
   * that makes it fit, else refuses with EF_ERR_STORAGE_FULL [EF-7.3].
   */
  private write(header: Header, payload?: Buffer, sync = false): void {
    const need = Journal.frameSize(header, payload?.length ?? 0)
    const dead = this.journal.size - this.liveBytes
    const overCap = this.maxBytes > 0 && this.journal.size + need > this.maxBytes
    if ((overCap && dead >= need) || (dead > COMPACT_MIN_DEAD && dead > this.liveBytes)) this.compact()
    if (this.maxBytes > 0 && this.journal.size + need > this.maxBytes)
      throw new EdgeFleetError(
        'EF_ERR_STORAGE_FULL',
        `agent.db would pass its ${this.maxBytes}-byte cap (maxDbBytes) with ${need} more bytes`,
      )
    this.apply(this.journal.append(header, payload, sync))
  }

  /** Rewrites the journal with current state only (counters, command log, queued rows in order). */
  private compact(): void {
    const live: { header: Header; payload?: Buffer }[] = []
    for (const [n, c] of this.counters) live.push({ header: { o: 'c', n, v: c.value } })
    for (const [id, c] of this.cmds)
      live.push({ header: { o: 'm', id, s: c.status as 'running' | 'done', r: c.result, a: c.at } })
    const queued = [...this.rows]
    // Payloads are read one by one as compaction writes them: never all in memory at once.
    function* frames(j: Journal<Header>): Generator<{ header: Header; payload?: Buffer }> {
      yield* live
      for (const [id, r] of queued)
        yield { header: { o: 'q', id, t: r.topic, k: r.kind, a: r.at }, payload: j.readPayload(r.frame) }
    }
    this.rows.clear()
    this.cmds.clear()
    this.counters.clear()
    this.bytesByKind.clear()
    this.liveBytes = 0
    try {
      this.journal.compact(frames(this.journal), (f) => this.apply(f))
    } catch (err) {
      // The old journal is untouched: rebuild the in-memory state from it.
      this.journal.replay((f) => this.apply(f))
      throw err
    }
  }

  /**
   * Appends to the outbox; when over `maxRows` the oldest telemetry rows are
   * evicted first, and every eviction is counted. Returns the rows evicted.
   */
  enqueue(topic: string, payload: Buffer, kind: string, now: number, maxRows: number): number {
    this.write({ o: 'q', id: this.nextId, t: topic, k: kind, a: now }, payload)
    const excess = this.rows.size - maxRows
    if (excess <= 0) return 0
    const victims = this.oldest(excess, true)
    this.remove(victims)
    this.bump('outbox_evicted', victims.length)
    return victims.length
  }

  /** The `n` oldest row ids, non-events first; with `events` false, non-events only. */
  private oldest(n: number, events: boolean): number[] {
    const out: number[] = []
    for (const [id, r] of this.rows) if (out.length < n && r.kind !== 'event') out.push(id)
    if (events) for (const [id, r] of this.rows) if (out.length < n && r.kind === 'event') out.push(id)
    return out
  }

  private remove(ids: number[]): void {
    const present = ids.filter((id) => this.rows.has(id))
    // A deletion only shrinks the state: it may pass the cap by its few bytes rather than fail.
    if (present.length) this.apply(this.journal.append({ o: 'd', ids: present }))
  }

  peek(limit: number, afterId = 0): OutboxRow[] {
    const out: OutboxRow[] = []
    for (const [id, r] of this.rows) {
      if (out.length >= limit) break
      if (id > afterId) out.push({ id, topic: r.topic, kind: r.kind, payload: this.journal.readPayload(r.frame) })
    }
    return out
  }

  ack(id: number): void {
    this.remove([id])
  }

  outboxSize(): number {
    return this.rows.size
  }

  bump(name: string, by = 1): void {
    this.write({ o: 'c', n: name, v: this.counter(name) + by })
  }

  counter(name: string): number {
    return this.counters.get(name)?.value ?? 0
  }

  cmdStatus(id: string): { status: string; result: string | null } | undefined {
    const c = this.cmds.get(id)
    return c && { status: c.status, result: c.result }
  }

  setCmd(id: string, status: 'running' | 'done', result: unknown, now: number): void {
    // The command log outranks queued telemetry: a device whose db filled up while offline must still run the hub's commands.
    // Synced: a command must not run twice after a power cut [EF-2.3.2].
    const r = result === undefined ? null : JSON.stringify(result)
    this.withRoom(() => this.write({ o: 'm', id, s: status, r, a: now }, undefined, true))
  }

  /**
   * Runs a write; when the size cap (or the disk) refuses it, drops the
   * oldest queued telemetry/samples (counted in `spaceDrops`) and tries
   * again, a few times. Throws the refusal when no room can be made. Each
   * round frees at least 1/16 of the cap (8 rows at least), so the rewrite
   * that reclaims the space happens once per that much new data, not once
   * per record.
   */
  withRoom<T>(write: () => T, attempts = 4): T {
    for (let i = 0; ; i++) {
      try {
        return write()
      } catch (err) {
        if (!isFull(err) || i >= attempts) throw err
        const n = this.evictForRoom(this.maxBytes / 16)
        this.spaceDrops += n
        if (n === 0) throw err
      }
    }
  }

  /** Evicts the oldest non-event rows until `bytes` of frames are freed (8 rows at least); returns rows removed. */
  private evictForRoom(bytes: number): number {
    const victims: number[] = []
    let freed = 0
    for (const [id, r] of this.rows) {
      if (freed >= bytes && victims.length >= 8) break
      if (r.kind === 'event') continue
      victims.push(id)
      freed += r.frame.size
    }
    this.remove(victims)
    return victims.length
  }

  /** Caps agent.db at `bytes` [EF-7.3]: past it a write fails with EF_ERR_STORAGE_FULL instead of filling the device. */
  setMaxBytes(bytes: number): void {
    this.maxBytes = Math.max(64 * 1024, bytes)
  }

  /** Removes the `n` oldest rows that are not events (telemetry, samples first); returns rows removed. */
  evictOldest(n: number): number {
    const victims = this.oldest(n, false)
    this.remove(victims)
    return victims.length
  }

  /** Bytes of payload queued for one kind (e.g. samples, for the on-disk capture cap). */
  queuedBytes(kind: string): number {
    return this.bytesByKind.get(kind) ?? 0
  }

  /** Rows queued per kind. */
  queuedByKind(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const r of this.rows.values()) out[r.kind] = (out[r.kind] ?? 0) + 1
    return out
  }

  close(): void {
    this.journal.close()
  }
}

/**
 * An agent.db from an agent that kept it in SQLite is renamed to
 * agent.db.sqlite (kept for the operator; nothing reads it) and a new
 * journal started: queued telemetry of that version is not resent, and its
 * command log starts over (commands are signed and idempotent).
 */
function moveAsideSqlite(path: string): void {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return
  }
  const head = Buffer.alloc(SQLITE_MAGIC.length)
  const n = readSync(fd, head, 0, head.length, 0)
  closeSync(fd)
  if (n === head.length && head.toString('latin1') === SQLITE_MAGIC) renameSync(path, `${path}.sqlite`)
}
