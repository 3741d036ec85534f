// The retraining loop's hub side, composed once: batched ingest [EF-9.1],
// drift with baselines [EF-9.4, EF-9.5], retention [EF-9.3] and the live
// feed [EF-9.7]. hub.ts creates it; the API and the handlers use its parts.
import type { Logger } from 'pino'
import type { HubStore, FlushResult } from '../store/index.js'
import { FeedLive } from '../feed/live.js'
import { Ingestor, type IngestOptions } from './ingest.js'
import { DriftMonitor, type DriftOptions } from './drift.js'
import { Retention, type RetentionOptions } from './retention.js'

export { Ingestor, DriftMonitor, Retention, FeedLive }

export interface RetrainingOptions {
  ingest?: Partial<IngestOptions>
  drift?: Partial<DriftOptions>
  retention?: Partial<RetentionOptions> & { enabled?: boolean }
}

export interface RetrainingDeps {
  store: HubStore
  log: Logger
  now: () => number
  /** The hub's MQTT publish (QoS 1); without it the live feed only wakes HTTP followers. */
  publish?: (topic: string, payload: Buffer) => Promise<void>
  /** Also told about every flush (the hub's message counters). */
  onFlush?: (r: FlushResult) => void
  /** Each ingest transaction's time and size [EF-8.12]. */
  onTransaction?: (t: { seconds: number; records: number; ok: boolean }) => void
}

export class Retraining {
  readonly live: FeedLive
  readonly ingest: Ingestor
  readonly drift: DriftMonitor
  readonly retention: Retention

  constructor(deps: RetrainingDeps, options: RetrainingOptions = {}) {
    const log = deps.log.child({ svc: 'retraining' })
    this.live = new FeedLive({ publish: deps.publish, log })
    this.ingest = new Ingestor(
      {
        store: deps.store,
        now: deps.now,
        log,
        onFlush: (r) => {
          this.live.committed(r.feed)
          deps.onFlush?.(r)
        },
        onTransaction: deps.onTransaction,
      },
      options.ingest,
    )
    this.drift = new DriftMonitor(
      { store: deps.store, now: deps.now, log, onFeed: (lines) => this.live.committed(lines) },
      options.drift,
    )
    this.retention = new Retention({ store: deps.store, now: deps.now, log }, options.retention)
    this.retentionEnabled = options.retention?.enabled ?? true
  }

  private readonly retentionEnabled: boolean

  start(): void {
    this.drift.start()
    if (this.retentionEnabled) this.retention.start()
  }

  /** Stops the drift and retention timers (a replica that no longer leads [EF-12.6]); ingest goes on. */
  stopJobs(): void {
    this.drift.stop()
    this.retention.stop()
  }

  /** Stops timers, commits what is still queued and stops the writer thread. */
  async close(): Promise<void> {
    this.drift.stop()
    this.retention.stop()
    await this.ingest.close()
  }
}
