// A rollout to an older version must be created as a rollback [EF-8.13]:
// refused up front with EF_ERR_ROLLOUT_DOWNGRADE otherwise (nothing stored),
// and with rollback: true its deploys are signed rollbacks.
import { afterEach, describe, expect, it } from 'vitest'
import { startRolloutBench, type RolloutBench } from '../fixtures/rollouts.js'

let bench: RolloutBench | undefined
afterEach(async () => {
  await bench?.close()
  bench = undefined
})

const fleet = Array.from({ length: 3 }, (_, i) => ({
  id: `g${i}`,
  profile: 'gateway-rpi4',
  model: 'm',
  version: i === 0 ? '1.0.0' : '2.0.0',
  tags: { fleet: 't' },
}))
const spec = {
  model: 'm',
  version: '1.0.0',
  selector: 'tag=fleet=t',
  waves: [{ percent: 100 }],
  soakMs: 10_000,
  gates: { minRequests: 1 },
  schedule: { maintenanceWindows: false },
}

describe('rollouts to an older version [EF-8.13]', () => {
  it('are refused without rollback, naming the newer version and its devices; nothing is stored', async () => {
    bench = await startRolloutBench({ devices: fleet })
    const before = bench.t.hub.store.rollouts.list(100, 0).length
    // create() is synchronous: the refusal is a throw, not a rejected promise.
    let refusal: unknown
    try {
      bench.t.hub.rollouts.create(spec, 'test')
    } catch (err) {
      refusal = err
    }
    expect(refusal).toMatchObject({
      code: 'EF_ERR_ROLLOUT_DOWNGRADE',
      message: expect.stringMatching(
        /m@1\.0\.0 is older than 2\.0\.0 that 2 matched device\(s\) run \(e\.g\. g1, g2\)/,
      ),
    })
    expect(bench.t.hub.store.rollouts.list(100, 0)).toHaveLength(before)
    // Through the API: 409 with the code.
    const res = await bench.t.hub.api.inject({
      method: 'POST',
      url: '/api/v1/rollouts',
      headers: { authorization: `Bearer ${bench.t.hub.adminToken}` },
      payload: spec,
    })
    expect(res.statusCode).toBe(409)
    expect(res.json().error.code).toBe('EF_ERR_ROLLOUT_DOWNGRADE')
  })

  it('with rollback: true it goes out as signed rollback deploys and completes', async () => {
    bench = await startRolloutBench({ devices: fleet })
    const r = bench.t.hub.rollouts.create({ ...spec, rollback: true }, 'test')
    await bench.drive(() => bench!.rollout(r.id).state === 'completed')
    const deploys = bench.fleet.deploys.filter((d) => d.version === '1.0.0')
    expect(deploys.map((d) => d.rollback)).toEqual([true, true])
  })
})
