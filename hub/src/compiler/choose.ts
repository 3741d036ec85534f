// The choice among the builds that passed every budget. Kept apart from
// generation and measurement, and pure, so a policy change is one function
// and its tests need no model: fastest wins; without timing (or on a tie) the
// smaller build. On a metered network every downloaded byte costs, so there
// the smallest build that meets the latency budget wins (int8-weight with
// compact storage: ~0.26 of fp32), and only if none does, the fastest.
import type { Precision } from '@edgefleet/shared'

/** What the choice looks at in one passing build. */
export interface Choosable {
  precision: Precision
  sizeBytes: number
  /** Median latency, ms; null (or undefined) when the compile did not time builds. */
  latencyMs?: number | null
}

export interface ChoicePolicy {
  /** The profile's network is metered: bytes over speed. */
  metered: boolean
  /** The profile's latency budget, ms. */
  latencyBudgetMs: number
}

export interface Choice {
  /** Index into the candidates given. */
  index: number
  /** Why, when the choice is not the fastest build (goes into the build's notes). */
  note?: string
}

export function chooseBuild(candidates: readonly Choosable[], policy: ChoicePolicy): Choice {
  if (candidates.length === 0) throw new RangeError('chooseBuild needs at least one passing candidate')
  const ranked = candidates
    .map((c, index) => ({ ...c, index }))
    .sort((a, b) => (a.latencyMs ?? 0) - (b.latencyMs ?? 0) || a.sizeBytes - b.sizeBytes)
  const fastest = ranked[0]
  if (!policy.metered) return { index: fastest.index }
  const inBudget = ranked.filter(
    (c) => c.latencyMs === null || c.latencyMs === undefined || c.latencyMs <= policy.latencyBudgetMs,
  )
  const smallest = [...inBudget].sort((a, b) => a.sizeBytes - b.sizeBytes)[0]
  if (!smallest) return { index: fastest.index }
  if (smallest === fastest) return { index: smallest.index }
  return {
    index: smallest.index,
    note: `metered network: smallest build within the ${policy.latencyBudgetMs} ms latency budget chosen over the fastest (${fastest.precision})`,
  }
}
