// The periodic reconciliation pass [EF-2.1.4] alone: which idle open
// assignments it resends. The store's query is the one thing it reads, so
// the test hands it the rows that query would return.
import { describe, expect, it } from 'vitest'
import { Reconciler } from '../../src/distribution/reconcile.js'
import type { DeploymentDeviceRow, HubStore } from '../../src/store/index.js'

const row = (deviceId: string): DeploymentDeviceRow =>
  ({ deploymentId: 'dep-1', deviceId, state: 'downloading', updatedAt: 0 }) as DeploymentDeviceRow

describe('Reconciler', () => {
  const store = { deployments: { idleOpen: () => [row('gathering'), row('lost-event'), row('confirming')] } }
  /** A reconciler over those rows; returns it and the devices it resent to. */
  const reconcilerWith = (receiving?: (deviceId: string) => boolean) => {
    const resent: string[] = []
    const reconciler = new Reconciler({
      store: store as unknown as HubStore,
      now: () => 100_000,
      resend: (a) => {
        resent.push(a.deviceId)
        return Promise.resolve()
      },
      ...(receiving ? { receiving } : {}),
      onError: (err) => {
        throw err
      },
    })
    return { reconciler, resent }
  }

  it('resends idle open assignments, except to devices taking part in a broadcast', async () => {
    const { reconciler, resent } = reconcilerWith((deviceId) => deviceId !== 'lost-event')
    await reconciler.tick()
    expect(resent).toEqual(['lost-event'])
    expect(reconciler.resent).toBe(1)
  })

  it('without a distributor to ask, resends every idle open assignment', async () => {
    const { reconciler, resent } = reconcilerWith()
    await reconciler.tick()
    expect(resent).toEqual(['gathering', 'lost-event', 'confirming'])
  })
})
