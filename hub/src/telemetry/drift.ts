// Drift [EF-9.5]: PSI of each input's sketch and of the output confidence
// over a recent window, per profile, against the version's baseline; a
// subject rising above the threshold appends a drift event to the feed once
// (hysteresis: re-armed below threshold / 2).
import type { Logger } from 'pino'
import type { HubStore, FeedLine, RollupCounts, Baseline } from '../store/index.js'
import { psi } from '../stats.js'
import { defaultFieldBaselineOptions, maybeFreezeFieldBaseline, type FieldBaselineOptions } from './baselines.js'

export interface DriftOptions extends FieldBaselineOptions {
  /** How often the hub evaluates (ms); 0 = only when evaluate() is called. */
  intervalMs: number
  /** Window of recent telemetry compared with the baseline (ms). */
  windowMs: number
  /** PSI above which a subject drifts. */
  threshold: number
  /** Requests with a confidence needed in the window to judge the output. */
  minOutputCount: number
  /** Observed values needed in the window to judge an input. */
  minInputCount: number
}

const defaultDriftOptions: DriftOptions = {
  ...defaultFieldBaselineOptions,
  intervalMs: 60_000, // 1 minute
  windowMs: 60 * 60_000, // 1 hour
  threshold: 0.2,
  minOutputCount: 100,
  minInputCount: 1000,
}

export interface DriftValue {
  model: string
  version: string
  profile: string
  subject: string
  psi: number | null
  count: number
  baselineSource: Baseline['source'] | null
  drifting: boolean
}

const sum = (a: readonly number[]) => a.reduce((x, y) => x + y, 0)

/** One subject of a window (an input's sketch or the output confidence) against the baseline's. */
interface Comparison {
  subject: string
  psi: number | null
  count: number
  expected: number[] | null
  actual: number[]
}

/** Where a comparison belongs: one model version's window for one profile, at one evaluation. */
interface WindowContext {
  model: string
  version: string
  window: RollupCounts & { profile: string }
  baseline: Baseline | undefined
  fromMs: number
  now: number
}

/** The subjects of one window against one baseline, with their PSI [EF-9.5]. */
function compare(window: RollupCounts, baseline: Baseline | undefined): Comparison[] {
  const out: Comparison[] = []
  if (window.confidence) {
    const e = baseline?.confidence ?? null
    out.push({
      subject: 'output:confidence',
      psi: e ? psi(e, window.confidence) : null,
      count: sum(window.confidence),
      expected: e,
      actual: window.confidence,
    })
  }
  for (const [name, sketch] of Object.entries(window.features)) {
    const e = baseline?.features[name] ?? null
    out.push({
      subject: `input:${name}`,
      psi: e ? psi(e, sketch) : null,
      count: sum(sketch),
      expected: e,
      actual: sketch,
    })
  }
  return out
}

export class DriftMonitor {
  readonly options: DriftOptions
  private timer: NodeJS.Timeout | undefined
  /** Last evaluation's duration (ms) and rows read, for /metrics and the bench. */
  readonly stats = { evaluations: 0, events: 0, lastMs: 0 }

  constructor(
    private readonly deps: { store: HubStore; now: () => number; log: Logger; onFeed?: (lines: FeedLine[]) => void },
    options: Partial<DriftOptions> = {},
  ) {
    this.options = Object.freeze({ ...defaultDriftOptions, ...options })
  }

  start(): void {
    if (this.options.intervalMs > 0 && !this.timer) {
      this.timer = setInterval(() => {
        try {
          this.evaluate()
        } catch (err) {
          this.deps.log.error({ err: (err as Error).message }, 'drift evaluation failed')
        }
      }, this.options.intervalMs)
      this.timer.unref()
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  /** One evaluation of every version with telemetry in the window; returns the values and the drift events appended. */
  evaluate(): { values: DriftValue[]; events: FeedLine[] } {
    const { store, now: clock } = this.deps
    const options = this.options
    const t0 = performance.now()
    const now = clock()
    const from = now - options.windowMs
    const values: DriftValue[] = []
    const events: FeedLine[] = []
    const telemetry = store.telemetry
    store.transaction(() => {
      for (const { model, version } of telemetry.rollups.active(from, now + 1)) {
        maybeFreezeFieldBaseline(store, model, version, now, options)
        for (const window of telemetry.rollups.window(model, version, from, now + 1).values()) {
          if (window.profile === '*') continue
          // A build baseline is the health check's few (often synthetic) inputs: no PSI against it,
          // the version has "no baseline yet" until its field baseline is frozen or one is posted [EF-9.4].
          const effective = telemetry.baselines.effective(model, version, window.profile)
          const baseline = effective?.source === 'build' ? undefined : effective
          for (const comparison of compare(window, baseline)) {
            const min = comparison.subject === 'output:confidence' ? options.minOutputCount : options.minInputCount
            if (comparison.count < min) continue
            values.push(
              this.updateDriftState({ model, version, window, baseline, fromMs: from, now }, comparison, events),
            )
          }
        }
      }
    })
    this.stats.evaluations++
    this.stats.events += events.length
    this.stats.lastMs = performance.now() - t0
    if (events.length) {
      this.deps.log.info({ events: events.length }, 'drift events')
      this.deps.onFeed?.(events)
    }
    return { values, events }
  }

  /**
   * Opens a drift alert (a feed event) when the PSI passes the threshold, closes it
   * below half the threshold (hysteresis), and stores the subject's state [EF-9.5].
   * Returns the subject's value, drifting or not.
   */
  private updateDriftState(context: WindowContext, comparison: Comparison, events: FeedLine[]): DriftValue {
    const { model, version, window, baseline, now } = context
    const { options } = this
    const baselines = this.deps.store.telemetry.baselines
    const prev = baselines.driftState(model, version, window.profile, comparison.subject)
    let open = prev?.open ?? false
    const { psi } = comparison
    if (baseline !== undefined && psi !== null && !open && psi > options.threshold) {
      open = true
      events.push(
        this.deps.store.telemetry.feed.append(driftEvent(context, baseline, comparison, options.threshold), now),
      )
    } else if (open && (comparison.psi === null || comparison.psi < options.threshold / 2)) {
      open = false
    }
    const value: DriftValue = {
      model,
      version,
      profile: window.profile,
      subject: comparison.subject,
      psi: comparison.psi,
      count: comparison.count,
      baselineSource: baseline?.source ?? null,
      drifting: open,
    }
    baselines.putDriftState({ ...value, open, evaluatedAt: now })
    return value
  }
}

/** The feed record of a drift alert: the window's and the baseline's bins side by side. */
function driftEvent(context: WindowContext, baseline: Baseline, comparison: Comparison, threshold: number) {
  const { model, version, window, fromMs, now } = context
  return {
    model,
    version,
    kind: 'drift' as const,
    body: {
      profile: window.profile,
      subject: comparison.subject,
      psi: comparison.psi,
      threshold,
      window: { fromMs, toMs: now, requests: window.requests, bins: comparison.actual },
      baseline: { source: baseline.source, fromMs: baseline.fromMs, toMs: baseline.toMs, bins: comparison.expected },
    },
  }
}
