// Telemetry batches of a simulated device: realistic numbers (a latency
// histogram around the profile's typical latency, a confidence histogram
// leaning high, an input sketch of a roughly normal feature), built once per
// device as JSON and then patched in place for each batch (batch id digits
// and the two timestamps), so 10,000 devices cost almost nothing per batch.
const LATENCY_BUCKETS_MS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
const FEATURE_BUCKETS = [
  -1000, -100, -10, -3, -1, -0.3, -0.1, -0.03, -0.01, 0, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 100, 1000,
]

/** A small deterministic generator per device, so runs repeat. */
function rng(seed) {
  let a = seed >>> 0 || 1
  return () => {
    a = (a * 1664525 + 1013904223) >>> 0
    return a / 4294967296
  }
}

/** Normal draw (Box-Muller). */
const normal = (rand) => Math.sqrt(-2 * Math.log(rand() || 1e-9)) * Math.cos(2 * Math.PI * rand())

function histogram(bounds, draw, n) {
  const counts = new Array(bounds.length + 1).fill(0)
  let sum = 0
  for (let i = 0; i < n; i++) {
    const x = draw()
    sum += x
    let b = bounds.findIndex((ub) => x <= ub)
    if (b < 0) b = bounds.length
    counts[b]++
  }
  return { counts, sum }
}

/** One model's record for a window of `requests` requests. */
function record(model, rand) {
  const requests = 20 + Math.floor(rand() * 80)
  const typicalMs = model.latencyMs * (0.8 + rand() * 0.4)
  const lat = histogram(LATENCY_BUCKETS_MS, () => typicalMs * Math.exp(0.35 * normal(rand)), requests)
  const conf = histogram(
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    () => Math.min(1, Math.max(0, 0.85 + 0.12 * normal(rand))),
    requests,
  )
  const feats = 64
  const sk = histogram(FEATURE_BUCKETS, () => 0.2 * normal(rand), feats)
  const mean = sk.sum / feats
  return {
    model: model.name,
    version: model.version,
    requests,
    errors: rand() < 0.05 ? 1 : 0,
    provider: 'cpu',
    latency: lat.counts,
    latencySumMs: Math.round(lat.sum * 1000) / 1000,
    confidence: conf.counts,
    features: [{ input: 'x', count: feats, mean, variance: 0.04, min: -1, max: 1, sketch: sk.counts }],
  }
}

/**
 * A batch template for `id` reporting `models`; `patch(buf, seq, now)` rewrites
 * the batch id's 10 sequence digits and both 13-digit timestamps in place.
 */
export function telemetryTemplate(id, models, seed) {
  const rand = rng(seed)
  const tail = JSON.stringify({ models: models.map((m) => record(m, rand)) }).slice(1)
  const t0 = Date.now()
  const text = `{"v":1,"deviceId":"${id}","batchId":"${id}-0000000000","from":${t0 - 1000},"to":${t0},${tail}`
  const seqAt = text.indexOf(`"batchId":"${id}-`) + `"batchId":"${id}-`.length
  const fromAt = text.indexOf('"from":') + 7
  const toAt = text.indexOf('"to":') + 5
  return {
    payload: Buffer.from(text, 'latin1'),
    events: models.length,
    patch(buf, seq, now, windowMs) {
      buf.write(String(seq).padStart(10, '0'), seqAt, 'latin1')
      buf.write(String(now - windowMs), fromAt, 'latin1')
      buf.write(String(now), toAt, 'latin1')
    },
  }
}
