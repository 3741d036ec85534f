// Per-device deployment state [EF-2.4]: forward only, terminal states stick,
// a failure ends any open state.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { DeviceEvent } from '@edgefleet/shared'
import { HubStore, DEVICE_DEPLOY_STATES, TERMINAL_STATES, type DeviceDeployState } from '../../src/store/index.js'
import { STORE_BACKENDS, openTestStore } from '../fixtures/store-backends.js'

type Kind = DeviceEvent['kind']
let seq = 0

describe.each(STORE_BACKENDS)('DeploymentStore on %s', (backend) => {
  let store: HubStore
  let closeStore: () => void
  beforeAll(async () => {
    ;({ store, close: closeStore } = await openTestStore(backend))
    store.devices.insert('dev-1', 'gateway-rpi4', {}, 'a'.repeat(64), 1)
    store.devices.insert('dev-2', 'gateway-rpi4', {}, 'b'.repeat(64), 1)
  })
  afterAll(() => closeStore())

  let dep = ''
  /** A fresh deployment with dev-1 at `state`. */
  const fresh = (state: DeviceDeployState = 'pending') => {
    dep = `dep-${++seq}`
    store.deployments.create(
      { id: dep, model: 'wake', version: '1', target: 'profile=gateway-rpi4', rollback: false, createdAt: seq },
      [
        { deviceId: 'dev-1', buildId: null, cmdId: null, state },
        { deviceId: 'dev-2', buildId: null, cmdId: null, state: 'pending' },
      ],
    )
  }
  const ev = (kind: Kind, extra: Partial<DeviceEvent> = {}): DeviceEvent => ({
    v: 1,
    deviceId: 'dev-1',
    ts: 1,
    kind,
    deploymentId: dep,
    ...extra,
  })
  const state = () => store.deployments.devices(dep).find((d) => d.deviceId === 'dev-1')!.state
  const apply = (kind: Kind, extra: Partial<DeviceEvent> = {}) => store.deployments.applyEvent(ev(kind, extra), 1000)

  beforeEach(() => fresh())

  it('moves forward through the whole happy path', () => {
    store.deployments.setSent(dep, 'dev-1', 'cmd-00000001', 10)
    expect(state()).toBe('sent')
    for (const k of ['received', 'downloading', 'downloaded', 'verified', 'staged', 'activated'] as const) {
      expect(apply(k)).toBe(true)
      expect(state()).toBe(k)
    }
    // The other device is untouched.
    expect(store.deployments.devices(dep).find((d) => d.deviceId === 'dev-2')!.state).toBe('pending')
  })

  it('may skip states forward', () => {
    expect(apply('verified')).toBe(true)
    expect(state()).toBe('verified')
  })

  it('never moves backwards (a late downloading after verified is ignored)', () => {
    apply('verified')
    expect(apply('downloading', { bytes: 10, totalBytes: 100 })).toBe(false)
    expect(apply('received')).toBe(false)
    expect(state()).toBe('verified')
    // A repeated event (QoS 1 duplicate) is harmless.
    expect(apply('verified')).toBe(true)
    expect(state()).toBe('verified')
  })

  it.each(['activated', 'rejected', 'health_failed', 'failed', 'rolled_back'] as const)(
    'terminal %s sticks',
    (terminal) => {
      expect(apply(terminal, terminal === 'activated' ? {} : { code: 'EF_ERR_INTERNAL', message: 'x' })).toBe(true)
      for (const state of [
        'received',
        'downloading',
        'staged',
        'activated',
        'failed',
        'rejected',
        'health_failed',
        'rolled_back',
      ] as const) {
        expect(apply(state)).toBe(false)
      }
      expect(state()).toBe(terminal)
    },
  )

  it.each(['pending', 'sent', 'received', 'downloading', 'downloaded', 'verified', 'staged'] as const)(
    'a failure ends open state %s',
    (from) => {
      fresh(from)
      expect(apply('health_failed', { code: 'EF_ERR_HEALTH_CHECK_FAILED', message: 'diff' })).toBe(true)
      const row = store.deployments.devices(dep).find((d) => d.deviceId === 'dev-1')!
      expect(row.state).toBe('health_failed')
      expect(row.code).toBe('EF_ERR_HEALTH_CHECK_FAILED')
      expect(row.message).toBe('diff')
    },
  )

  it('ignores events without a deployment, for unknown pairs, and of non-state kinds', () => {
    expect(store.deployments.applyEvent({ v: 1, deviceId: 'dev-1', ts: 1, kind: 'activated' }, 1)).toBe(false)
    expect(apply('activated', { deploymentId: 'no-such' })).toBe(false)
    expect(apply('activated', { deviceId: 'dev-3' })).toBe(false)
    expect(apply('chunk_rejected', { code: 'EF_ERR_CHUNK_HASH_MISMATCH' })).toBe(false)
    expect(state()).toBe('pending')
  })

  it('keeps progress bytes when a later event carries none', () => {
    apply('downloading', { bytes: 40, totalBytes: 100 })
    apply('downloaded')
    const row = store.deployments.devices(dep).find((d) => d.deviceId === 'dev-1')!
    expect([row.state, row.bytes, row.totalBytes]).toEqual(['downloaded', 40, 100])
  })

  it('lists open assignments for resend and counts states', () => {
    apply('activated')
    expect(store.deployments.openForDevice('dev-1').map((a) => a.deploymentId)).not.toContain(dep)
    expect(store.deployments.openForDevice('dev-2').map((a) => a.deploymentId)).toContain(dep)
    const listed = store.deployments.list(1000).find((d) => d.id === dep)!
    expect(listed.counts).toEqual({ activated: 1, pending: 1 })
  })

  it('keeps a device event log, newest first', () => {
    store.deployments.insertEvent(ev('received', { cmdId: 'c1' }), 1)
    store.deployments.insertEvent(ev('failed', { code: 'EF_ERR_INTERNAL', message: 'boom' }), 2)
    const log = store.deployments.eventsForDevice('dev-1', 2)
    expect(log.map((e) => e.kind)).toEqual(['failed', 'received'])
    expect(log[0]).toMatchObject({ code: 'EF_ERR_INTERNAL', message: 'boom', deploymentId: dep })
  })

  it('terminal set and state order agree', () => {
    expect([...TERMINAL_STATES].every((s) => (DEVICE_DEPLOY_STATES as readonly string[]).includes(s))).toBe(true)
  })
})
