// Gate flags are read once for `rollout create` and `model add --canary` [EF-8.5, EF-9.11].
import { describe, expect, it } from 'vitest'
import { gateFlags } from '../../src/cli/rollouts.js'

describe('gateFlags', () => {
  it('maps each flag to its gate, `off` to null, and leaves out what was not given', () => {
    expect(
      gateFlags({ 'max-p95-ratio': '3', 'max-confidence-psi': 'off', 'min-requests': '20', waves: '1,100%' }),
    ).toEqual({ maxP95Ratio: 3, maxConfidencePsi: null, minRequests: 20 })
    expect(gateFlags({ 'max-error-rate-delta': '0.05', 'min-agreement': '0.9' })).toEqual({
      maxErrorRateDelta: 0.05,
      minShadowAgreement: 0.9,
    })
    expect(gateFlags({})).toEqual({})
  })

  it('--confidence takes a probability in [0.5, 0.99999] and has no off state [EF-8.5]', () => {
    expect(gateFlags({ confidence: '0.995' })).toEqual({ confidence: 0.995 })
    for (const bad of ['off', '0.3', '1', '99%', 'high'])
      expect(() => gateFlags({ confidence: bad }), bad).toThrow(/--confidence must be a number in \[0\.5, 0\.99999\]/)
  })
})
