// Retention [EF-9.3]: a node-cron task deletes raw telemetry, samples, feed
// records and rollups past their ages, a bounded slice per transaction so
// ingest (which shares the single SQLite writer) never waits long.
import cron, { type ScheduledTask } from 'node-cron'
import { EdgeFleetError } from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { HubStore } from '../store/index.js'

export interface RetentionOptions {
  /** node-cron expression (five or six fields). */
  schedule: string
  /** Raw telemetry rows, batches and shadow comparisons (days). */
  rawDays: number
  /** Captured samples (days). */
  sampleDays: number
  /** Feed records (days); raising the feed's floor [EF-9.6]. */
  feedDays: number
  /** Rollups (days). */
  rollupDays: number
  /** Device events: deployment progress and results, telemetry refusals (days). */
  eventDays: number
  /** Device events kept at most (rows, newest first), whatever their age: a chatty device cannot fill the disk. */
  eventMaxRows: number
  /** Rows deleted per transaction. */
  sliceRows: number
}

const defaultRetentionOptions: RetentionOptions = {
  schedule: '17 * * * *', // hourly, off the hour
  rawDays: 7,
  sampleDays: 30,
  feedDays: 30,
  rollupDays: 400,
  eventDays: 90,
  eventMaxRows: 1_000_000,
  sliceRows: 10_000,
}

const DAY_MS = 24 * 60 * 60_000

export interface RetentionReport {
  telemetry: number
  batches: number
  shadow: number
  samples: number
  feed: number
  rollups: number
  events: number
  ms: number
}

export class Retention {
  readonly options: RetentionOptions
  private task: ScheduledTask | undefined

  constructor(
    private readonly deps: { store: HubStore; now: () => number; log: Logger },
    options: Partial<RetentionOptions> = {},
  ) {
    this.options = Object.freeze({ ...defaultRetentionOptions, ...options })
    if (!cron.validate(this.options.schedule))
      throw new EdgeFleetError(
        'EF_ERR_CONFIG_INVALID',
        `retention schedule ${JSON.stringify(this.options.schedule)} is not a node-cron expression`,
      )
    for (const k of ['eventDays', 'eventMaxRows'] as const)
      if (!(this.options[k] > 0))
        throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', `retention ${k} must be a positive number`)
  }

  start(): void {
    this.task ??= cron.schedule(
      this.options.schedule,
      () => {
        try {
          this.run()
        } catch (err) {
          this.deps.log.error({ err: (err as Error).message }, 'retention failed')
        }
      },
      { name: 'edgefleet-retention', noOverlap: true },
    )
  }

  stop(): void {
    void this.task?.destroy()
    this.task = undefined
  }

  /** One pass: deletes everything past its age, slice by slice. */
  run(): RetentionReport {
    const t0 = performance.now()
    const { retention: del, telemetry } = this.deps.store
    const now = this.deps.now()
    const options = this.options
    /** Runs one bounded delete until it removes less than a full slice. */
    const drain = (deleteSlice: (limit: number) => number): number => {
      let total = 0
      for (;;) {
        const n = deleteSlice(options.sliceRows)
        total += n
        if (n < options.sliceRows) return total
      }
    }
    const raw = now - options.rawDays * DAY_MS
    const rollupCut = now - options.rollupDays * DAY_MS
    const report: RetentionReport = {
      telemetry: 0,
      shadow: drain((limit) => del.shadow(raw, limit)),
      // Batch ids live as long as rollups: a late resend of a batch whose rows are gone must still be
      // recognised, or it would be counted into its rollup a second time [EF-9.1].
      batches: drain((limit) => del.batches(rollupCut, limit)),
      samples: drain((limit) => del.samples(now - options.sampleDays * DAY_MS, limit)),
      rollups: drain((limit) => del.rollups(rollupCut, limit)),
      events:
        drain((limit) => del.events(now - options.eventDays * DAY_MS, limit)) +
        drain((limit) => del.eventsBeyond(options.eventMaxRows, limit)),
      feed: 0,
      ms: 0,
    }
    for (const v of del.rawVersions()) report.telemetry += drain((limit) => del.raw(v.model, v.version, raw, limit))
    for (;;) {
      const n = telemetry.feed.prune(now - options.feedDays * DAY_MS, options.sliceRows)
      report.feed += n
      if (n === 0) break
    }
    report.ms = performance.now() - t0
    this.deps.log.info(report, 'retention pass')
    return report
  }
}
