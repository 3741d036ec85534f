// Prometheus histograms of the hub [EF-8.12]: API latency, ingest
// transactions, model builds and download bytes. Cumulative buckets with
// fixed bounds per family, one series per label set, rendered in text format
// 0.0.4 (`_bucket{le=…}`, `_sum`, `_count`). Bounded label sets only: routes
// are fastify's templates (`/api/v1/devices/:id`), never raw URLs.

class Histogram {
  private readonly series = new Map<string, { labels: Record<string, string>; counts: number[]; sum: number }>()

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending; +Inf is implied. */
    readonly bounds: readonly number[],
  ) {}

  observe(value: number, labels: Record<string, string> = {}): void {
    if (!Number.isFinite(value)) return
    const key = JSON.stringify(labels)
    let s = this.series.get(key)
    if (!s) this.series.set(key, (s = { labels, counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0 }))
    const i = this.bounds.findIndex((b) => value <= b)
    s.counts[i === -1 ? this.bounds.length : i]++
    s.sum += value
  }

  /** Observations so far with these labels (0 when none). */
  count(labels: Record<string, string> = {}): number {
    return this.series.get(JSON.stringify(labels))?.counts.reduce((a, b) => a + b, 0) ?? 0
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`]
    for (const series of this.series.values()) {
      const labels = Object.entries(series.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      const with_ = (extra?: string) => `{${[...labels, ...(extra ? [extra] : [])].join(',')}}`
      let cumulative = 0
      this.bounds.forEach((b, i) => {
        cumulative += series.counts[i]
        lines.push(`${this.name}_bucket${with_(`le="${b}"`)} ${cumulative}`)
      })
      cumulative += series.counts[this.bounds.length]
      lines.push(`${this.name}_bucket${with_('le="+Inf"')} ${cumulative}`)
      const plain = labels.length ? with_() : ''
      lines.push(`${this.name}_sum${plain} ${series.sum}`, `${this.name}_count${plain} ${cumulative}`)
    }
    return lines.join('\n')
  }
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

const SECONDS_FAST = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const SECONDS_SLOW = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
const BYTES = [1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30]

export interface HubHistograms {
  /** Labels method, route (fastify template), status (HTTP code). */
  apiSeconds: Histogram
  /** Labels outcome (committed | failed). */
  ingestSeconds: Histogram
  /** Records (batches and samples) per ingest transaction, label outcome. */
  ingestRecords: Histogram
  /** Labels profile, outcome (ok | failed). */
  buildSeconds: Histogram
  /** Bytes that crossed the network per device download (`downloaded` events), label model. */
  downloadBytes: Histogram
}

export function newHistograms(): HubHistograms {
  return {
    apiSeconds: new Histogram(
      'edgefleet_api_request_duration_seconds',
      'HTTP API and console response time, by method, route template and status.',
      SECONDS_FAST,
    ),
    ingestSeconds: new Histogram(
      'edgefleet_ingest_transaction_duration_seconds',
      'Telemetry/sample ingest transactions, queue hand-off to commit (EF-9.1).',
      SECONDS_FAST,
    ),
    ingestRecords: new Histogram(
      'edgefleet_ingest_transaction_records',
      'Telemetry batches and samples per ingest transaction (EF-9.1).',
      [1, 5, 10, 50, 100, 500, 1000, 5000, 10000],
    ),
    buildSeconds: new Histogram(
      'edgefleet_build_duration_seconds',
      'Model builds (compile, reference outputs, sign) per profile.',
      SECONDS_SLOW,
    ),
    downloadBytes: new Histogram(
      'edgefleet_download_received_bytes',
      'Bytes that crossed the network for one device download, duplicates included (EF-2.4 downloaded events).',
      BYTES,
    ),
  }
}
