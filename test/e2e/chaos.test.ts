// The chaos suite's short run in CI (issue 18): one round of each fault kind
// (agent, hub and broker kill -9, a full disk, partitions, clock jumps) against
// deploys and inference, on the embedded broker and on Mosquitto, with no
// invariant broken. `pnpm chaos --minutes N` runs it longer (docs/RELIABILITY.md).
import { describe, it, expect } from 'vitest'
import { runChaos } from '../chaos/chaos.mjs'

describe('chaos (short run)', () => {
  it('keeps every invariant under faults on both brokers', { timeout: 900_000 }, async () => {
    const stats = await runChaos({ minutes: 0, seed: 20261129, log: () => undefined })
    console.log(
      `[chaos] ${JSON.stringify({ faults: stats.faults, iterations: stats.iterations, telemetry: stats.telemetry })}`,
    )
    expect(stats.violations).toEqual([])
    // Every fault kind this machine can inject came up on both brokers.
    expect(stats.faults['agent-kill']).toBe(2)
    expect(stats.faults['hub-kill']).toBe(2)
    expect(stats.faults['broker-kill-embedded']).toBe(1)
    expect(stats.faults['broker-kill-mosquitto']).toBe(1)
    expect(stats.faults['partition-drop']).toBe(2)
    expect(stats.faults['partition-stall']).toBe(2)
    expect(stats.iterations).toBeGreaterThanOrEqual(8)
  })
})
