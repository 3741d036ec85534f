// Receipt journal [EF-9.1.1]: behind an external broker, mqtt.js acknowledges
// a message (PUBACK) as soon as the hub has read it, before the ingest
// transaction holding it commits, so a hub killed in between used to lose what
// the device already deleted from its outbox. Each telemetry and sample message
// is appended here first, with one write(2) that outlives a kill -9 of the hub
// (not a power cut: no fsync per message). A segment is emptied or deleted when
// all of its messages committed; what is left at the next start is replayed
// whole through ingest, which is idempotent (batch and sample ids), so a
// message that did commit counts nowhere twice.
//
// Format: NDJSON, one `{"t":topic,"p":base64 payload}` line per message, in
// segment files `<seq>.ndjson`; a segment is deleted when it is closed (past
// `segmentBytes`) and all its messages committed, and the open one is
// truncated whenever everything in it has committed.
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'

interface Segment {
  path: string
  fd: number
  bytes: number
  /** Messages appended and not yet committed. */
  pending: number
}

/** A message appended to the journal; pass it back to `committed`. */
export interface Receipt {
  segment: Segment
}

export interface JournalRecord {
  topic: string
  payload: Buffer
}

export interface JournalStats {
  appended: number
  committed: number
  /** Messages found at start, from a run that ended before committing them. */
  replayed: number
  /** Lines that could not be read back (a write cut short). */
  unreadable: number
}

const SEGMENT_BYTES = 8 * 1024 * 1024

export class ReceiptJournal {
  readonly stats: JournalStats = { appended: 0, committed: 0, replayed: 0, unreadable: 0 }
  private current: Segment
  private nextSeq: number
  private closed = false

  /** Opens the journal in `dir`; the records left by an earlier run come back to be replayed. */
  static open(dir: string, segmentBytes = SEGMENT_BYTES): { journal: ReceiptJournal; leftover: JournalRecord[] } {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const files = readdirSync(dir)
      .filter((name) => /^\d+\.ndjson$/.test(name))
      .sort((a, b) => parseInt(a, 10) - parseInt(b, 10))
    const journal = new ReceiptJournal(dir, segmentBytes, files.length ? parseInt(files[files.length - 1], 10) + 1 : 0)
    const leftover = files.flatMap((name) => journal.readSegment(join(dir, name)))
    journal.stats.replayed = leftover.length
    return { journal, leftover }
  }

  private constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    firstSeq: number,
  ) {
    this.nextSeq = firstSeq
    this.current = this.openSegment()
  }

  /**
   * Old segments stay until `forgetReplayed` (after their records were replayed and committed):
   * a crash during the replay replays them again.
   */
  forgetReplayed(): void {
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name)
      if (/^\d+\.ndjson$/.test(name) && path !== this.current.path) unlinkSync(path)
    }
  }

  /** Appends one message; its PUBACK may go out once this returned. */
  append(topic: string, payload: Buffer): Receipt {
    if (this.current.bytes >= this.segmentBytes) this.rotate()
    const line = Buffer.from(JSON.stringify({ t: topic, p: payload.toString('base64') }) + '\n')
    writeSync(this.current.fd, line)
    this.current.bytes += line.length
    this.current.pending++
    this.stats.appended++
    return { segment: this.current }
  }

  /** The message's transaction committed (or refused it for good): it needs no replay. */
  committed(receipt: Receipt): void {
    const segment = receipt.segment
    segment.pending--
    this.stats.committed++
    if (segment.pending > 0 || this.closed) return
    if (segment === this.current) {
      ftruncateSync(segment.fd, 0) // opened with O_APPEND: the next line goes at offset 0
      segment.bytes = 0
    } else unlinkSync(segment.path)
  }

  close(): void {
    this.closed = true
    closeSync(this.current.fd)
  }

  private rotate(): void {
    const full = this.current
    closeSync(full.fd)
    this.current = this.openSegment()
    if (full.pending === 0) unlinkSync(full.path)
  }

  private openSegment(): Segment {
    const path = join(this.dir, `${this.nextSeq++}.ndjson`)
    return { path, fd: openSync(path, 'a', 0o600), bytes: 0, pending: 0 }
  }

  private readSegment(path: string): JournalRecord[] {
    const records: JournalRecord[] = []
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (line === '') continue
      try {
        const parsed = JSON.parse(line) as { t?: unknown; p?: unknown }
        if (typeof parsed.t !== 'string' || typeof parsed.p !== 'string') throw new Error('not a record')
        records.push({ topic: parsed.t, payload: Buffer.from(parsed.p, 'base64') })
      } catch {
        this.stats.unreadable++
      }
    }
    return records
  }
}
