// The planner's choice among passing builds (choose.ts), on its own: the
// profile's preference order, the previous version's precision kept, and a
// faster (or, metered, smaller) build replacing the preferred one only past
// the margin and outside noise [EF-5.3].
import { describe, expect, it } from 'vitest'
import { chooseBuild, pairedRatio, type Choosable } from '../../src/compiler/choose.js'

const MiB = 2 ** 20
/** `n` rounds around `ms` with a small deterministic wobble. */
const rounds = (ms: number, n = 20, wobble = 0.02) =>
  Array.from({ length: n }, (_, i) => ms * (1 + wobble * Math.sin(i * 1.7)))
const fp32: Choosable = { precision: 'fp32', sizeBytes: 4 * MiB, latencyMs: 2, roundsMs: rounds(2) }
const stat: Choosable = { precision: 'int8-static', sizeBytes: 1.1 * MiB, latencyMs: 1, roundsMs: rounds(1) }
const dyn: Choosable = { precision: 'int8-dynamic', sizeBytes: 1.2 * MiB, latencyMs: 3, roundsMs: rounds(3) }
const weight: Choosable = { precision: 'int8-weight', sizeBytes: 1.05 * MiB, latencyMs: 4, roundsMs: rounds(4) }
const industrial = { preference: ['fp32', 'int8-static'] as const, metered: false }

describe('chooseBuild', () => {
  it("keeps the profile's preferred precision when the faster build is within the margin (issue: 0.0323 vs 0.0331 ms)", () => {
    const close = { ...stat, latencyMs: 0.0323, roundsMs: rounds(0.0323) }
    const c = chooseBuild([close, { ...fp32, latencyMs: 0.0331, roundsMs: rounds(0.0331) }], industrial)
    expect(c.index).toBe(1)
    expect(c.rule).toBe('profile preference')
    expect(c.comparisons).toEqual([expect.objectContaining({ precision: 'int8-static', outcome: 'within margin' })])
    expect(c.comparisons[0].latencyRatio).toBeCloseTo(0.0323 / 0.0331, 2)
    expect(c.why).toMatch(/fp32: the profile's most preferred precision .* more than 10 %/)
  })

  it('lets a build faster past the margin, in most of enough rounds, replace the preferred one, and says by how much', () => {
    const c = chooseBuild([fp32, stat], industrial)
    expect(c.index).toBe(1)
    expect(c.rule).toBe('faster past margin')
    expect(c.why).toMatch(
      /int8-static replaces the preferred fp32: 50 % of its latency \(median of 20 paired rounds, faster in 100 % of them; margin 10 %\)/,
    )
  })

  it('does not trust a speed-up seen in too few rounds or in too few of them', () => {
    const few = chooseBuild([fp32, { ...stat, roundsMs: rounds(1, 5) }], industrial)
    expect(few.index).toBe(0)
    expect(few.comparisons[0].outcome).toBe('not outside noise')
    // Median ratio 0.5 but slower in 8 of 20 rounds: noise, not a speed-up.
    const noisy = rounds(1).map((x, i) => (i % 5 < 2 ? 10 : x))
    const c = chooseBuild([fp32, { ...stat, roundsMs: noisy }], industrial)
    expect(c.index).toBe(0)
    expect(c.comparisons[0]).toMatchObject({ outcome: 'not outside noise', fasterShare: 0.6 })
  })

  it("keeps the previous version's precision while it passes, even against a faster build", () => {
    const c = chooseBuild([fp32, stat, dyn], {
      ...industrial,
      preference: ['int8-dynamic', 'int8-static', 'fp32'],
      previous: 'fp32',
    })
    expect(c.index).toBe(0)
    expect(c.rule).toBe('previous precision kept')
    expect(c.comparisons.every((x) => x.outcome === 'anchor is sticky')).toBe(true)
  })

  it('says why the previous precision was not kept when it no longer passes', () => {
    const c = chooseBuild([stat, dyn], {
      preference: ['int8-dynamic', 'int8-static', 'fp32'],
      previous: 'fp32',
      previousFailure: 'cosine 0.97 < 0.99',
      metered: false,
    })
    expect(c.why).toMatch(
      /^previous precision fp32 not kept \(cosine 0.97 < 0.99\); int8-static replaces the preferred int8-dynamic/,
    )
  })

  it('without timing decides by preference alone', () => {
    const untimed = [weight, dyn, fp32].map((c) => ({ ...c, latencyMs: null, roundsMs: undefined }))
    const c = chooseBuild(untimed, { preference: ['int8-dynamic', 'int8-weight', 'fp32'], metered: false })
    expect(c.index).toBe(1)
    expect(c.comparisons.map((x) => x.outcome)).toEqual(['not timed', 'not timed'])
  })

  it('on a metered network a build smaller past the margin replaces the preferred one; one a few % smaller does not', () => {
    const metered = { preference: ['fp32', 'int8-dynamic', 'int8-weight'] as const, metered: true }
    const c = chooseBuild([fp32, dyn, weight], metered)
    expect(c.index).toBe(2)
    expect(c.rule).toBe('smaller past margin')
    expect(c.why).toMatch(/metered network, 26 % of its size/)
    const m2 = { preference: ['int8-dynamic', 'int8-weight', 'fp32'] as const, metered: true }
    const slightlySmaller = { ...weight, sizeBytes: 1.15 * MiB } // 96 % of int8-dynamic's size
    expect(chooseBuild([fp32, dyn, slightlySmaller], m2).index).toBe(1)
  })

  it('pairs rounds: the median of per-round ratios and the share won', () => {
    expect(pairedRatio([1, 2, 3], [2, 2, 2])).toEqual({ median: 1, fasterShare: 1 / 3, rounds: 3 })
    expect(pairedRatio([], [1])).toBeNull()
  })

  it('refuses an empty list with a RangeError', () => {
    expect(() => chooseBuild([], industrial)).toThrow(RangeError)
  })
})
