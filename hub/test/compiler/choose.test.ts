// The planner's choice among passing builds (choose.ts), on its own: fastest
// first, smaller on a tie or without timing, and on a metered network the
// smallest build within the latency budget.
import { describe, expect, it } from 'vitest'
import { chooseBuild, type Choosable } from '../../src/compiler/choose.js'

const MiB = 2 ** 20
const fp32: Choosable = { precision: 'fp32', sizeBytes: 4 * MiB, latencyMs: 2 }
const dyn: Choosable = { precision: 'int8-dynamic', sizeBytes: 1.2 * MiB, latencyMs: 3 }
const weight: Choosable = { precision: 'int8-weight', sizeBytes: 1.05 * MiB, latencyMs: 4 }
const wired = { metered: false, latencyBudgetMs: 50 }
const metered = { metered: true, latencyBudgetMs: 50 }

describe('chooseBuild', () => {
  it('takes the fastest build, whatever the order given', () => {
    expect(chooseBuild([dyn, fp32, weight], wired)).toEqual({ index: 1 })
    expect(chooseBuild([weight, dyn], wired)).toEqual({ index: 1 })
  })

  it('breaks a latency tie, and decides without timing, by size', () => {
    expect(chooseBuild([fp32, { ...dyn, latencyMs: 2 }], wired).index).toBe(1)
    const untimed = [fp32, dyn, weight].map((c) => ({ ...c, latencyMs: null }))
    expect(chooseBuild(untimed, wired).index).toBe(2)
  })

  it('on a metered network takes the smallest build within the latency budget and says why', () => {
    const c = chooseBuild([fp32, dyn, weight], metered)
    expect(c.index).toBe(2)
    expect(c.note).toMatch(
      /metered network: smallest build within the 50 ms latency budget chosen over the fastest \(fp32\)/,
    )
  })

  it('on a metered network skips builds over the budget, and takes the fastest when none meets it', () => {
    const slowSmall = { ...weight, latencyMs: 80 }
    expect(chooseBuild([fp32, dyn, slowSmall], metered).index).toBe(1)
    const c = chooseBuild([{ ...fp32, latencyMs: 60 }, slowSmall], metered)
    expect(c).toEqual({ index: 0 })
  })

  it('adds no note when the smallest in budget is also the fastest', () => {
    expect(chooseBuild([fp32, { ...weight, latencyMs: 1 }], metered)).toEqual({ index: 1 })
  })

  it('refuses an empty list with a RangeError', () => {
    expect(() => chooseBuild([], wired)).toThrow(RangeError)
  })
})
