// Reading outputs by what the manifest says they mean [EF-2.6.4]: a
// confidence per request, the top-1 class, and the comparison of a shadow
// candidate's outputs with the live ones [EF-2.6.6].
import type { Manifest } from '@edgefleet/shared'
import type { Tensor } from './session.js'

type Kind = NonNullable<Manifest['semantics']>[number]['kind']
const CONFIDENT: ReadonlySet<Kind> = new Set(['probability', 'scores', 'logits'])

/** The output that carries confidence, and how to read it; undefined without semantics. */
function confidenceOutput(manifest: Manifest): { name: string; kind: Kind } | undefined {
  return manifest.semantics?.find((s) => CONFIDENT.has(s.kind))
}

function maxOf(d: ArrayLike<number>): { max: number; at: number } {
  let max = Number.NEGATIVE_INFINITY
  let at = -1
  for (let i = 0; i < d.length; i++) {
    if (d[i] > max) {
      max = d[i]
      at = i
    }
  }
  return { max, at }
}

/** Number view of a tensor's data (bigint tensors have no confidence). */
function numeric(t: Tensor | undefined): (ArrayLike<number> & Iterable<number>) | undefined {
  if (!t || t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return undefined
  return t.data
}

/**
 * Confidence of one request: probability → the value (largest if several),
 * scores → the largest score, logits → the largest softmax probability.
 * Clamped to [0, 1]; undefined without semantics or on a non-finite value.
 */
export function confidenceOf(manifest: Manifest, outputs: Record<string, Tensor>): number | undefined {
  const sem = confidenceOutput(manifest)
  if (!sem) return undefined
  const d = numeric(outputs[sem.name])
  if (!d || d.length === 0) return undefined
  const { max } = maxOf(d)
  let c = max
  if (sem.kind === 'logits') {
    let sum = 0
    for (const v of d) sum += Math.exp(v - max)
    c = 1 / sum
  }
  if (!Number.isFinite(c)) return undefined
  return Math.min(1, Math.max(0, c))
}

/** Top-1 index: argmax of the confidence output, else of the first output. */
function top1(manifest: Manifest, outputs: Record<string, Tensor>): number {
  const sem = confidenceOutput(manifest)
  const name = sem?.name ?? manifest.outputs[0]?.name ?? Object.keys(outputs)[0]
  const d = numeric(outputs[name])
  if (!d) return -1
  // A single probability is a binary decision: top-1 is which side of 0.5 it falls.
  if (d.length === 1 && sem?.kind === 'probability') return d[0] >= 0.5 ? 1 : 0
  return maxOf(d).at
}

export interface Comparison {
  agree: boolean
  maxAbsDiff: number
  cosine: number
}

/** Compares candidate with live outputs over every output both have, as one concatenated vector. */
export function compareOutputs(
  manifest: Manifest,
  live: Record<string, Tensor>,
  cand: Record<string, Tensor>,
): Comparison {
  let dot = 0
  let na = 0
  let nb = 0
  let maxAbsDiff = 0
  for (const [name, t] of Object.entries(live)) {
    const a = numeric(t)
    const b = numeric(cand[name])
    if (!a || a.length !== b?.length) {
      maxAbsDiff = Number.POSITIVE_INFINITY
      continue
    }
    for (let i = 0; i < a.length; i++) {
      const x = a[i]
      const y = b[i]
      const diff = Math.abs(x - y)
      if (diff > maxAbsDiff || Number.isNaN(diff)) maxAbsDiff = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff
      dot += x * y
      na += x * x
      nb += y * y
    }
  }
  const cosine = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
  return {
    agree: top1(manifest, live) === top1(manifest, cand),
    maxAbsDiff,
    cosine: Number.isFinite(cosine) ? cosine : 0,
  }
}
