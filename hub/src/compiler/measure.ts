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

export function compareOutputs(
  refs: readonly Record<string, NamedTensor>[],
  gots: readonly Record<string, NamedTensor>[],
): Accuracy {
  const per: Accuracy['perOutput'] = {}
  let maxAbs = 0
  let sumAbs = 0
  let count = 0
  let minCos = 1
  let cosSum = 0
  let cosN = 0
  let agree = 0
  let positions = 0
  const names = Object.keys(refs[0] ?? {})
  for (const name of names) {
    let oMax = 0
    let oSum = 0
    let oN = 0
    let oCos = 1
    let oAgree = 0
    let oPos = 0
    for (let s = 0; s < refs.length; s++) {
      const reference = refs[s][name]
      const g = gots[s][name]
      if (!reference || !g || !(reference.data instanceof Float32Array) || !(g.data instanceof Float32Array)) continue
      const expected = reference.data
      const actual = g.data
      let dot = 0
      let na = 0
      let nb = 0
      for (let i = 0; i < expected.length; i++) {
        const d = Math.abs(expected[i] - actual[i])
        if (d > oMax || Number.isNaN(d)) oMax = Number.isNaN(d) ? Infinity : d
        oSum += d
        dot += expected[i] * actual[i]
        na += expected[i] * expected[i]
        nb += actual[i] * actual[i]
      }
      oN += expected.length
      // Two all-zero outputs agree perfectly; one zero and one not do not.
      const cos = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
      oCos = Math.min(oCos, Number.isNaN(cos) ? 0 : cos)
      cosSum += cos
      cosN++
      if (looksLikeClassScores(reference.dims)) {
        const c = reference.dims[reference.dims.length - 1]
        for (let p = 0; p + c <= expected.length; p += c) {
          let ia = 0
          let ib = 0
          for (let k = 1; k < c; k++) {
            if (expected[p + k] > expected[p + ia]) ia = k
            if (actual[p + k] > actual[p + ib]) ib = k
          }
          oPos++
          if (ia === ib) oAgree++
        }
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
    meanCosine: cosN ? cosSum / cosN : 1,
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
