// The agent's Prometheus /metrics on its loopback API: cumulative inference
// counters and latency histograms per model version, plus queue, drop,
// capture and process figures, so a device can be scraped like any service.
import { LATENCY_BUCKETS_MS, promFamily, type PromSample, emptyLatencyCounts } from '@edgefleet/shared'
import { bucketOf } from './aggregator.js'

interface Series {
  requests: number
  errors: number
  buckets: number[]
  sumMs: number
}

export class InferenceCounters {
  private readonly series = new Map<string, Series & { model: string; version: string }>()

  record(model: string, version: string, latencyMs: number, ok: boolean): void {
    const key = `${model}@${version}`
    let series = this.series.get(key)
    if (!series) {
      series = {
        model,
        version,
        requests: 0,
        errors: 0,
        buckets: emptyLatencyCounts(),
        sumMs: 0,
      }
      this.series.set(key, series)
    }
    series.requests++
    if (!ok) series.errors++
    series.buckets[bucketOf(latencyMs)]++
    series.sumMs += latencyMs
  }

  render(extra: AgentFigures): string {
    const all = [...this.series.values()]
    const lbl = (s: { model: string; version: string }) => ({ model: s.model, version: s.version })
    return [
      promFamily(
        'edgefleet_agent_requests_total',
        'counter',
        'Inference requests per model version.',
        all.map((s): PromSample => [lbl(s), s.requests]),
      ),
      promFamily(
        'edgefleet_agent_errors_total',
        'counter',
        'Inference requests that failed in the runtime.',
        all.map((s): PromSample => [lbl(s), s.errors]),
      ),
      latencyHistogram(all),
      ...agentFamilies(extra),
      '',
    ].join('\n')
  }
}

/** What the agent reports beside its inference counters: served versions, outbox, drops, capture, link. */
interface AgentFigures {
  active: { name: string; version: string }[]
  queued: Record<string, number>
  drops: Record<string, number>
  captured: number
  connected: boolean
}

/** The inference latency histogram family, cumulative buckets per model version in seconds. */
function latencyHistogram(all: (Series & { model: string; version: string })[]): string {
  const hist: string[] = [
    '# HELP edgefleet_agent_inference_seconds Inference latency per model version.',
    '# TYPE edgefleet_agent_inference_seconds histogram',
  ]
  for (const series of all) {
    let cum = 0
    LATENCY_BUCKETS_MS.forEach((b, i) => {
      cum += series.buckets[i]
      hist.push(
        `edgefleet_agent_inference_seconds_bucket{model="${series.model}",version="${series.version}",le="${b / 1000}"} ${cum}`,
      )
    })
    hist.push(
      `edgefleet_agent_inference_seconds_bucket{model="${series.model}",version="${series.version}",le="+Inf"} ${series.requests}`,
    )
    hist.push(
      `edgefleet_agent_inference_seconds_sum{model="${series.model}",version="${series.version}"} ${series.sumMs / 1000}`,
    )
    hist.push(
      `edgefleet_agent_inference_seconds_count{model="${series.model}",version="${series.version}"} ${series.requests}`,
    )
  }
  return hist.join('\n')
}

/** The gauge and counter families of the agent's own state, one text block each. */
function agentFamilies(extra: AgentFigures): string[] {
  const mem = process.memoryUsage()
  return [
    promFamily(
      'edgefleet_agent_model_active',
      'gauge',
      'Model versions being served (1 per model).',
      extra.active.map((m): PromSample => [{ model: m.name, version: m.version }, 1]),
    ),
    promFamily(
      'edgefleet_agent_outbox_queued',
      'gauge',
      'Records waiting in the offline outbox, by kind.',
      Object.entries(extra.queued).map(([kind, n]): PromSample => [{ kind }, n]),
    ),
    promFamily(
      'edgefleet_agent_dropped_total',
      'counter',
      'Records dropped, by reason (EF-2.6.3).',
      Object.entries(extra.drops).map(([reason, n]): PromSample => [{ reason }, n]),
    ),
    promFamily('edgefleet_agent_captured_total', 'counter', 'Samples captured for retraining.', [[{}, extra.captured]]),
    promFamily('edgefleet_agent_connected', 'gauge', '1 while connected to the hub broker.', [
      [{}, extra.connected ? 1 : 0],
    ]),
    promFamily('edgefleet_agent_resident_memory_bytes', 'gauge', 'Resident set size of the agent process.', [
      [{}, mem.rss],
    ]),
  ]
}
