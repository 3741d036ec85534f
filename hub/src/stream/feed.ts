// The retraining feed on JetStream [EF-9.13]: every record of the NDJSON feed
// [EF-9.6], the same line byte for byte, is published to EF_FEED on
// `ef.feed.{model}` with its cursor in the `Ef-Cursor` header and as the
// message id. A training pipeline reads it with any NATS client from any
// stream sequence or time. The hub reads what to publish from the store in
// cursor order, after each commit and at start from the cursor of the
// stream's last message, so a record committed while the stream was away is
// published once it is back: none is skipped.
import { codeOf } from '@edgefleet/shared'
import { headers as natsHeaders, type PubAck } from 'nats'
import type { Logger } from 'pino'
import type { HubStore } from '../store/index.js'
import { STREAM_NAMES, SUBJECTS, subjectToken, type HubStream } from './connection.js'

export const CURSOR_HEADER = 'Ef-Cursor'
const MODEL_HEADER = 'Ef-Model'

/** Records read from the store and published (in parallel, in order) per round. */
const PAGE = 500
/** Pause before publishing again after the stream refused (ms). */
const RETRY_MS = 1_000

export class StreamFeed {
  /** Highest cursor the stream holds. */
  private published = 0
  private pumping: Promise<void> | undefined
  private again = false
  private closed = false
  private retry: NodeJS.Timeout | undefined
  readonly stats = { published: 0, failedRounds: 0, skippedExpired: 0 }

  constructor(private readonly deps: { stream: HubStream; store: HubStore; log: Logger }) {}

  /** Reads the cursor of the stream's last record, then publishes whatever the store holds after it. */
  async start(): Promise<void> {
    this.published = await this.lastCursorInStream()
    this.wake()
  }

  get lastPublished(): number {
    return this.published
  }

  private async lastCursorInStream(): Promise<number> {
    const { jsm } = this.deps.stream
    const info = await jsm.streams.info(STREAM_NAMES.feed)
    if (info.state.messages === 0) return 0
    const last = await jsm.streams.getMessage(STREAM_NAMES.feed, { seq: info.state.last_seq })
    return Number(last.header.get(CURSOR_HEADER)) || 0
  }

  /** Something was committed: publish it (one round at a time; a wake during a round runs another). */
  wake(): void {
    if (this.closed) return
    if (this.pumping) {
      this.again = true
      return
    }
    this.pumping = this.pump()
      .catch((err: unknown) => {
        // The store refused the read (closed while stopping, busy): try again later.
        this.deps.log.warn({ err: (err as Error).message }, 'feed publish round failed')
        if (!this.closed) this.retry = setTimeout(() => this.wake(), RETRY_MS)
      })
      .finally(() => {
        this.pumping = undefined
        if (this.again) {
          this.again = false
          this.wake()
        }
      })
  }

  private async pump(): Promise<void> {
    while (!this.closed) {
      const lines = this.page()
      if (lines.length === 0) return
      const acks: Promise<PubAck>[] = lines.map((l) => {
        const h = natsHeaders()
        h.set(CURSOR_HEADER, String(l.cursor))
        h.set(MODEL_HEADER, l.model)
        const subject = `${SUBJECTS.feed}.${subjectToken(l.model)}`
        return this.deps.stream.js.publish(subject, Buffer.from(l.line), { msgID: `feed:${l.cursor}`, headers: h })
      })
      const results = await Promise.allSettled(acks)
      const firstFailed = results.findIndex((r) => r.status === 'rejected')
      // Published through the record before the first refusal; the rest go again (same ids: dropped if stored).
      const upTo = firstFailed === -1 ? lines.length : firstFailed
      if (upTo > 0) this.published = lines[upTo - 1].cursor
      this.stats.published += upTo
      if (firstFailed !== -1) {
        this.stats.failedRounds++
        const err = (results[firstFailed] as PromiseRejectedResult).reason as Error
        this.deps.log.warn({ err: err.message, cursor: lines[firstFailed].cursor }, 'feed not published; retrying')
        this.retry = setTimeout(() => this.wake(), RETRY_MS)
        return
      }
    }
  }

  /** The next records after the last published; past a retention gap, from the floor (logged). */
  private page() {
    const feed = this.deps.store.telemetry.feed
    try {
      return feed.page({ since: this.published, limit: PAGE })
    } catch (err) {
      if (codeOf(err) !== 'EF_ERR_FEED_CURSOR_EXPIRED') throw err
      const floor = feed.floor()
      this.stats.skippedExpired += floor - this.published
      this.deps.log.warn({ code: codeOf(err), from: this.published, to: floor }, 'feed records removed before publish')
      this.published = floor
      return feed.page({ since: floor, limit: PAGE })
    }
  }

  /** Stops after the round in progress. */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.retry)
    await this.pumping
  }
}
