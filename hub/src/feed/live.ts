// Live feed [EF-9.7]: every record is published on ef/v1/feed/{model} after
// the transaction that appended it committed, and wakes HTTP streams that
// follow the feed. Best-effort by design: publishes beyond `maxInFlight`
// are skipped and counted, and a consumer resumes over HTTP by cursor.
import { EventEmitter } from 'node:events'
import { topics } from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { FeedLine } from '../store/index.js'

export interface FeedLiveEvents {
  /** Highest cursor committed so far. */
  committed: [cursor: number]
}

export class FeedLive extends EventEmitter<FeedLiveEvents> {
  private inFlight = 0
  readonly stats = { published: 0, skipped: 0, failed: 0 }

  constructor(
    private readonly deps: { publish?: (topic: string, payload: Buffer) => Promise<void>; log: Logger },
    private readonly maxInFlight = 1000,
  ) {
    super()
    this.setMaxListeners(0) // one listener per following HTTP stream
  }

  /** Called with the records of one committed transaction, in cursor order. */
  committed(lines: readonly FeedLine[]): void {
    if (lines.length === 0) return
    const publish = this.deps.publish
    if (publish) {
      for (const l of lines) {
        if (this.inFlight >= this.maxInFlight) {
          this.stats.skipped++
          continue
        }
        this.inFlight++
        publish(topics.feed(l.model), Buffer.from(l.line)).then(
          () => {
            this.inFlight--
            this.stats.published++
          },
          (err: unknown) => {
            this.inFlight--
            this.stats.failed++
            this.deps.log.debug({ err: (err as Error).message }, 'live feed publish failed')
          },
        )
      }
    }
    this.emit('committed', lines[lines.length - 1].cursor)
  }
}
