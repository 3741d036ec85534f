// Per-input value statistics for drift [EF-2.6.5]: count, mean and variance
// (Welford, merged per request), min, max and a fixed-bin sketch. Each request
// contributes at most MAX_OBSERVED evenly strided elements, so the cost on the
// serving path is bounded whatever the tensor size.
import { MAX_OBSERVED_ELEMENTS, featureBin, type FeatureStats, emptyFeatureSketch } from '@edgefleet/shared'
import type { Tensor } from '../runtime/session.js'

const MAX_OBSERVED = MAX_OBSERVED_ELEMENTS

export class FeatureAcc {
  count = 0
  mean = 0
  m2 = 0
  min = Number.POSITIVE_INFINITY
  max = Number.NEGATIVE_INFINITY
  readonly sketch = emptyFeatureSketch()

  constructor(readonly input: string) {}

  /** Observes a float tensor; other types are not features. */
  observe(t: Tensor): void {
    if (t.type !== 'float32' && t.type !== 'float64') return
    const values = t.data as Float32Array | Float64Array
    const n = values.length
    if (n === 0) return
    const step = n > MAX_OBSERVED ? n / MAX_OBSERVED : 1
    // Per-request moments first, then Chan's parallel merge into the window.
    let seen = 0
    let mean = 0
    let m2 = 0
    for (let f = 0; f < n; f += step) {
      const x = values[Math.floor(f)]
      if (!Number.isFinite(x)) continue
      seen++
      const delta = x - mean
      mean += delta / seen
      m2 += delta * (x - mean)
      if (x < this.min) this.min = x
      if (x > this.max) this.max = x
      this.sketch[featureBin(x)]++
    }
    if (seen === 0) return
    const total = this.count + seen
    const delta = mean - this.mean
    this.mean += (delta * seen) / total
    this.m2 += m2 + (delta * delta * this.count * seen) / total
    this.count = total
  }

  stats(): FeatureStats {
    const r = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : 0)
    return {
      input: this.input,
      count: this.count,
      mean: r(this.mean),
      variance: Math.max(0, r(this.count > 0 ? this.m2 / this.count : 0)),
      min: this.count ? r(this.min) : 0,
      max: this.count ? r(this.max) : 0,
      sketch: [...this.sketch],
    }
  }
}
