// The choice among the builds that passed every budget [EF-5.3]. Kept apart
// from generation and measurement, and pure, so a policy change is one
// function and its tests need no model.
//
// The profile's preference order decides, not the hub's stopwatch: the
// previous version's precision on this profile is kept when it still passes
// (a precision flip throws the delta away: a head change of 99 B became a
// 79,699 B download), else the profile's most preferred passing precision is
// the anchor. Another build replaces the anchor only when it is better past
// a margin (default 10 %) that the timing shows beyond noise: faster in the
// median of the paired per-round ratios AND in most rounds, over enough
// rounds. On a metered network the yardstick is size instead of speed.
import type { Precision } from '@edgefleet/shared'

/** What the choice looks at in one passing build. */
export interface Choosable {
  precision: Precision
  sizeBytes: number
  /** Median latency, ms; null (or undefined) when the compile did not time builds. */
  latencyMs?: number | null
  /** Per-round latencies, ms, rounds interleaved with every other build's (same index = same round). */
  roundsMs?: readonly number[]
}

export interface ChoicePolicy {
  /** The profile's precisions, most preferred first. */
  preference: readonly Precision[]
  /** The previous version's precision on this profile, if it had a build. */
  previous?: Precision
  /** Why the previous precision cannot be kept (its candidate's failure), for the report. */
  previousFailure?: string
  /** A challenger must beat the anchor by this share (0.10 = 10 %). */
  margin?: number
  /** Paired rounds needed before a latency comparison counts. */
  minRounds?: number
  /** Share of rounds in which the challenger must be faster (noise guard). */
  minWinShare?: number
  /** The profile's network is metered: bytes over speed. */
  metered: boolean
}

/** One challenger held against the anchor, with its numbers. */
interface Comparison {
  precision: Precision
  /** Challenger / anchor size. */
  sizeRatio: number
  /** Median of the per-round latency ratios challenger / anchor; null without timing. */
  latencyRatio: number | null
  /** Share of rounds in which the challenger was faster; null without timing. */
  fasterShare: number | null
  rounds: number
  outcome: 'replaces anchor' | 'within margin' | 'not outside noise' | 'not better' | 'not timed' | 'anchor is sticky'
}

export interface Choice {
  /** Index into the candidates given. */
  index: number
  /** Why this build: the rule that picked it, in words with its numbers (goes into the report). */
  why: string
  anchor: Precision
  rule: 'previous precision kept' | 'profile preference' | 'faster past margin' | 'smaller past margin'
  comparisons: Comparison[]
}

export const defaultChoice = { margin: 0.1, minRounds: 10, minWinShare: 0.75 }

export function chooseBuild(candidates: readonly Choosable[], policy: ChoicePolicy): Choice {
  if (candidates.length === 0) throw new RangeError('chooseBuild needs at least one passing candidate')
  const margin = policy.margin ?? defaultChoice.margin
  const rank = (p: Precision) => {
    const i = policy.preference.indexOf(p)
    return i < 0 ? policy.preference.length : i
  }
  const order = candidates.map((c, index) => ({ c, index })).sort((a, b) => rank(a.c.precision) - rank(b.c.precision))
  const sticky = order.find((o) => o.c.precision === policy.previous)
  const anchor = sticky ?? order[0]
  const comparisons = order
    .filter((o) => o !== anchor)
    .map((o) => compare(o.c, anchor.c, policy, margin, sticky !== undefined))
  const fmt = (x: number) => `${Math.round(x * 100)} %`
  if (sticky) {
    return {
      index: anchor.index,
      anchor: anchor.c.precision,
      rule: 'previous precision kept',
      why: `${anchor.c.precision}: the previous version's precision on this profile, kept so the delta between versions survives`,
      comparisons,
    }
  }
  const lead =
    policy.previous !== undefined
      ? `previous precision ${policy.previous} not kept (${policy.previousFailure ?? 'not among the passing builds'}); `
      : ''
  const winners = comparisons
    .map((cmp, k) => ({ cmp, o: order.filter((o) => o !== anchor)[k] }))
    .filter((w) => w.cmp.outcome === 'replaces anchor')
  if (!winners.length) {
    return {
      index: anchor.index,
      anchor: anchor.c.precision,
      rule: 'profile preference',
      why: `${lead}${anchor.c.precision}: the profile's most preferred precision that passes every budget; no other build is ${policy.metered ? 'smaller' : 'faster'} by more than ${fmt(margin)} beyond noise`,
      comparisons,
    }
  }
  const key = (w: (typeof winners)[number]) => (policy.metered ? w.cmp.sizeRatio : (w.cmp.latencyRatio ?? 1))
  const best = winners.sort((a, b) => key(a) - key(b))[0]
  const r = best.cmp
  return {
    index: best.o.index,
    anchor: anchor.c.precision,
    rule: policy.metered ? 'smaller past margin' : 'faster past margin',
    why: policy.metered
      ? `${lead}${best.o.c.precision} replaces the preferred ${anchor.c.precision}: metered network, ${fmt(r.sizeRatio)} of its size (margin ${fmt(margin)})`
      : `${lead}${best.o.c.precision} replaces the preferred ${anchor.c.precision}: ${fmt(r.latencyRatio ?? 1)} of its latency (median of ${r.rounds} paired rounds, faster in ${fmt(r.fasterShare ?? 0)} of them; margin ${fmt(margin)})`,
    comparisons,
  }
}

/** Median of the per-round ratios challenger/anchor and the share of rounds the challenger won. */
export function pairedRatio(
  challenger: readonly number[],
  anchor: readonly number[],
): { median: number; fasterShare: number; rounds: number } | null {
  const pairedRounds = Math.min(challenger.length, anchor.length)
  if (pairedRounds === 0) return null
  const ratios: number[] = []
  let faster = 0
  for (let i = 0; i < pairedRounds; i++) {
    ratios.push(challenger[i] / anchor[i])
    if (challenger[i] < anchor[i]) faster++
  }
  ratios.sort((a, b) => a - b)
  return { median: ratios[Math.floor(pairedRounds / 2)], fasterShare: faster / pairedRounds, rounds: pairedRounds }
}

function compare(
  choosable: Choosable,
  anchor: Choosable,
  policy: ChoicePolicy,
  margin: number,
  anchorSticky: boolean,
): Comparison {
  const sizeRatio = choosable.sizeBytes / anchor.sizeBytes
  const paired = choosable.roundsMs && anchor.roundsMs ? pairedRatio(choosable.roundsMs, anchor.roundsMs) : null
  const base = {
    precision: choosable.precision,
    sizeRatio,
    latencyRatio: paired?.median ?? null,
    fasterShare: paired?.fasterShare ?? null,
    rounds: paired?.rounds ?? 0,
  }
  if (anchorSticky) return { ...base, outcome: 'anchor is sticky' }
  if (policy.metered) return { ...base, outcome: sizeRatio <= 1 - margin ? 'replaces anchor' : 'not better' }
  if (!paired) return { ...base, outcome: 'not timed' }
  if (paired.median >= 1) return { ...base, outcome: 'not better' }
  if (paired.median > 1 - margin) return { ...base, outcome: 'within margin' }
  const enough =
    paired.rounds >= (policy.minRounds ?? defaultChoice.minRounds) &&
    paired.fasterShare >= (policy.minWinShare ?? defaultChoice.minWinShare)
  return { ...base, outcome: enough ? 'replaces anchor' : 'not outside noise' }
}
