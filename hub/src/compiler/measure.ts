// Measuring a build against the float model: accuracy over validation inputs
// and latency timed side by side (interleaved runs, after warm-up, median),
// because on a small noisy machine only ratios measured together mean anything.
import type { Session, NamedTensor } from './ort.js'
import { run } from './ort.js'

export interface Accuracy {
  maxAbsError: number
  meanAbsError: number
  /** Lowest cosine similarity over outputs and samples (the conservative figure budgets are checked on). */
  cosine: number
  meanCosine: number
  /** Share of positions whose arg-max agrees, over outputs that look like class scores; absent when none does. */
  top1Agreement?: number
  perOutput: Record<string, { maxAbsError: number; meanAbsError: number; cosine: number; top1Agreement?: number }>
}

/** Class scores: rank 2 or 3 with a last axis of at least 2 (e.g. [1, classes] or [1, steps, vocab]). */
function looksLikeClassScores(dims: readonly number[]): boolean {
  return (dims.length === 2 || dims.length === 3) && dims[dims.length - 1] >= 2
}

/** One sample's output against the reference: largest (NaN → Infinity) and summed absolute error, cosine. */
function sampleErrors(
  expected: Float32Array,
  actual: Float32Array,
): { maxAbs: number; sumAbs: number; cosine: number } {
  let maxAbs = 0
  let sumAbs = 0
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(expected[i] - actual[i])
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d
    sumAbs += d
    dot += expected[i] * actual[i]
    na += expected[i] * expected[i]
    nb += actual[i] * actual[i]
  }
  // Two all-zero outputs agree perfectly; one zero and one not do not.
  const cosine = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
  return { maxAbs, sumAbs, cosine }
}

/** Arg-max agreement over every run of `classes` scores (rec: per time step; cls: per image). */
function top1Agreement(
  expected: Float32Array,
  actual: Float32Array,
  classes: number,
): { agree: number; positions: number } {
  let agree = 0
  let positions = 0
  for (let p = 0; p + classes <= expected.length; p += classes) {
    let ia = 0
    let ib = 0
    for (let k = 1; k < classes; k++) {
      if (expected[p + k] > expected[p + ia]) ia = k
      if (actual[p + k] > actual[p + ib]) ib = k
    }
    positions++
    if (ia === ib) agree++
  }
  return { agree, positions }
}

export function compareOutputs(
  refs: readonly Record<string, NamedTensor>[],
  gots: readonly Record<string, NamedTensor>[],
): Accuracy {
  const per: Accuracy['perOutput'] = {}
  let maxAbs = 0
  let sumAbs = 0
  let count = 0
  let minCos = 1
  const cosines: number[] = []
  let agree = 0
  let positions = 0
  for (const name of Object.keys(refs[0] ?? {})) {
    let oMax = 0
    let oSum = 0
    let oN = 0
    let oCos = 1
    let oAgree = 0
    let oPos = 0
    for (let s = 0; s < refs.length; s++) {
      const reference = refs[s][name]
      const got = gots[s][name]
      if (!reference || !got || !(reference.data instanceof Float32Array) || !(got.data instanceof Float32Array))
        continue
      const sample = sampleErrors(reference.data, got.data)
      oMax = Math.max(oMax, sample.maxAbs)
      oSum += sample.sumAbs
      oN += reference.data.length
      oCos = Math.min(oCos, Number.isNaN(sample.cosine) ? 0 : sample.cosine)
      cosines.push(sample.cosine)
      if (looksLikeClassScores(reference.dims)) {
        const top1 = top1Agreement(reference.data, got.data, reference.dims[reference.dims.length - 1])
        oAgree += top1.agree
        oPos += top1.positions
      }
    }
    if (!oN) continue
    per[name] = {
      maxAbsError: oMax,
      meanAbsError: oSum / oN,
      cosine: oCos,
      ...(oPos ? { top1Agreement: oAgree / oPos } : {}),
    }
    maxAbs = Math.max(maxAbs, oMax)
    sumAbs += oSum
    count += oN
    minCos = Math.min(minCos, oCos)
    agree += oAgree
    positions += oPos
  }
  return {
    maxAbsError: maxAbs,
    meanAbsError: count ? sumAbs / count : 0,
    cosine: minCos,
    meanCosine: cosines.length ? cosines.reduce((a, b) => a + b, 0) / cosines.length : 1,
    ...(positions ? { top1Agreement: agree / positions } : {}),
    perOutput: per,
  }
}

export async function runAll(
  s: Session,
  samples: readonly Record<string, NamedTensor>[],
): Promise<Record<string, NamedTensor>[]> {
  const out: Record<string, NamedTensor>[] = []
  for (const x of samples) out.push(await run(s, x))
  return out
}

export interface TimingOptions {
  /** Untimed runs per session first. */
  warmup?: number
  /** Timed rounds at least, and at most `maxRounds`; stops once `budgetMs` is spent. */
  minRounds?: number
  maxRounds?: number
  budgetMs?: number
}

const defaultTimingOptions: Required<TimingOptions> = {
  warmup: 3,
  // Enough paired rounds for the planner's noise guard (choose.ts: defaultChoice.minRounds).
  minRounds: 12,
  maxRounds: 200,
  budgetMs: 4000, // all sessions together
}

export interface SideBySide {
  /** Median latency, ms, per session. */
  medianMs: number[]
  /** Every timed round, ms, per session; index r is the same round for all (paired comparisons). */
  roundsMs: number[][]
}

/** Latency of each session on `input`, runs interleaved round by round so load hits all alike. */
export async function timeSideBySide(
  sessions: readonly Session[],
  input: Record<string, NamedTensor>,
  opts: TimingOptions = {},
): Promise<SideBySide> {
  const timing = { ...defaultTimingOptions, ...opts }
  for (const s of sessions) for (let i = 0; i < timing.warmup; i++) await run(s, input)
  const times = sessions.map(() => [] as number[])
  const start = performance.now()
  for (let round = 0; round < timing.maxRounds; round++) {
    for (let k = 0; k < sessions.length; k++) {
      const t0 = performance.now()
      await run(sessions[k], input)
      times[k].push(performance.now() - t0)
    }
    if (round + 1 >= timing.minRounds && performance.now() - start > timing.budgetMs) break
  }
  return { medianMs: times.map(median), roundsMs: times }
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
