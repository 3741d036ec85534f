// Device rows: insert, lookup, selection by profile / tag / id, state updates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DeviceState } from '@edgefleet/shared'
import { HubStore, isDuplicateKey } from '../../src/store/index.js'
import { STORE_BACKENDS, openTestStore } from '../fixtures/store-backends.js'

const hex64 = (c: string) => c.repeat(64)

describe.each(STORE_BACKENDS)('DeviceStore on %s', (backend) => {
  let store: HubStore
  let closeStore: () => void
  beforeAll(async () => {
    ;({ store, close: closeStore } = await openTestStore(backend))
    store.devices.insert('rpi-1', 'gateway-rpi4', { site: 'north', line: '1' }, hex64('a'), 100)
    store.devices.insert('rpi-2', 'gateway-rpi4', { site: 'south' }, hex64('b'), 200)
    store.devices.insert('x86-1', 'industrial-x86', { site: 'north' }, hex64('c'), 300)
  })
  afterAll(() => closeStore())

  it('reads back what was inserted, offline and stateless', () => {
    expect(store.devices.get('rpi-1')).toEqual({
      id: 'rpi-1',
      status: 'active',
      statusAt: null,
      profile: 'gateway-rpi4',
      tags: { site: 'north', line: '1' },
      createdAt: 100,
      online: false,
      lastSeen: null,
      state: null,
    })
    expect(store.devices.get('nope')).toBeUndefined()
    expect(store.devices.secretHash('rpi-2')).toBe(hex64('b'))
    expect(store.devices.secretHash('nope')).toBeUndefined()
    expect(store.devices.count()).toBe(3)
  })

  it('refuses a duplicate id with the primary-key constraint', () => {
    let error: unknown
    try {
      store.devices.insert('rpi-1', 'industrial-x86', {}, hex64('d'), 400)
    } catch (err) {
      error = err
    }
    // Each engine's own code (PostgreSQL's unique_violation is 23505); isDuplicateKey reads both.
    expect((error as { code?: string }).code).toBe(backend === 'sqlite' ? 'SQLITE_CONSTRAINT_PRIMARYKEY' : '23505')
    expect(isDuplicateKey(error)).toBe(true)
    expect(store.devices.get('rpi-1')?.profile).toBe('gateway-rpi4')
  })

  it('lists in id order with limit and offset', () => {
    expect(store.devices.list().map((d) => d.id)).toEqual(['rpi-1', 'rpi-2', 'x86-1'])
    expect(store.devices.list(1, 1).map((d) => d.id)).toEqual(['rpi-2'])
    expect(store.devices.profilesInFleet()).toEqual(['gateway-rpi4', 'industrial-x86'])
  })

  it('selects by profile, tag and device id', () => {
    const ids = (sel: Parameters<typeof store.devices.select>[0]) => store.devices.select(sel).map((d) => d.id)
    expect(ids({ profile: 'gateway-rpi4' })).toEqual(['rpi-1', 'rpi-2'])
    expect(ids({ profile: 'industrial-x86' })).toEqual(['x86-1'])
    expect(ids({ profile: 'phone-android-arm64' })).toEqual([])
    expect(ids({ tag: ['site', 'north'] })).toEqual(['rpi-1', 'x86-1'])
    expect(ids({ tag: ['line', '1'] })).toEqual(['rpi-1'])
    expect(ids({ tag: ['site', 'west'] })).toEqual([])
    expect(ids({ tag: ['nosuch', 'north'] })).toEqual([])
    // A key with quotes cannot break out of the JSON path (the value is a bound parameter anyway).
    expect(ids({ tag: ['x" OR 1=1 OR "', 'north'] })).toEqual([])
    expect(ids({ tag: ['site', "north' OR '1'='1"] })).toEqual([])
    expect(ids({ device: 'rpi-2' })).toEqual(['rpi-2'])
    expect(ids({ device: 'ghost' })).toEqual([])
    expect(ids({})).toEqual([])
  })

  it('records state; an offline will keeps the last full state [EF-2.1.1]', () => {
    const online: DeviceState = {
      v: 1,
      deviceId: 'rpi-1',
      online: true,
      ts: 1,
      models: [{ name: 'wake', version: '1', precision: 'fp32', artifact: hex64('e'), slot: 'a' }],
      apiPort: 8790,
    }
    expect(store.devices.setState('rpi-1', online, 500)).toBe(true)
    let device = store.devices.get('rpi-1')!
    expect(device.online).toBe(true)
    expect(device.lastSeen).toBe(500)
    expect(device.state?.models?.[0].name).toBe('wake')

    expect(store.devices.setState('rpi-1', { v: 1, deviceId: 'rpi-1', online: false, ts: 2 }, 600)).toBe(true)
    device = store.devices.get('rpi-1')!
    expect(device.online).toBe(false)
    expect(device.lastSeen).toBe(600)
    expect(device.state?.models?.[0].version).toBe('1')

    expect(store.devices.setState('ghost', online, 700)).toBe(false)

    store.devices.setState('rpi-2', { v: 1, deviceId: 'rpi-2', online: true, ts: 3, models: [] }, 800)
    expect(store.devices.get('rpi-2')!.online).toBe(true)
    store.devices.markAllOffline()
    expect(store.devices.list().filter((x) => x.online)).toEqual([])
  })

  it('only active devices have credentials: disabled and removed ones have no secret nor broker hash [EF-1.3.3]', () => {
    store.devices.insert('life-1', 'gateway-rpi4', {}, hex64('d'), 400, '$7$101$x$y')
    expect(store.devices.brokerHashes()).toContainEqual({ id: 'life-1', hash: '$7$101$x$y' })
    expect(store.devices.setStatus('life-1', 'disabled', 500)).toBe(true)
    expect(store.devices.secretHash('life-1')).toBeUndefined()
    expect(store.devices.brokerHashes().map((d) => d.id)).not.toContain('life-1')
    expect(store.devices.select({ device: 'life-1' })).toEqual([])
    expect(store.devices.setStatus('life-1', 'active', 600)).toBe(true)
    expect(store.devices.secretHash('life-1')).toBe(hex64('d'))
    expect(store.devices.replaceSecret('life-1', hex64('e'), '$7$101$n$m')).toBe(true)
    expect(store.devices.secretHash('life-1')).toBe(hex64('e'))
    expect(store.devices.setStatus('life-1', 'removed', 700)).toBe(true)
    expect(store.devices.get('life-1')).toMatchObject({ status: 'removed', statusAt: 700 })
    // Removal is final: no way back, no new secret, and the hashes are gone from the row itself.
    expect(store.devices.setStatus('life-1', 'active', 800)).toBe(false)
    expect(store.devices.replaceSecret('life-1', hex64('f'), null)).toBe(false)
    expect(store.devices.secretHash('life-1')).toBeUndefined()
    const raw = store.db.prepare('SELECT secret_hash, broker_hash FROM devices WHERE id = ?').get('life-1')
    expect(raw).toEqual({ secret_hash: '', broker_hash: null })
  })
})
