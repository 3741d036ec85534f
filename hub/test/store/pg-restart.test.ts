// The hub on PostgreSQL (`--store postgresql://…`) through a restart of its
// database: while PostgreSQL is down every API request that touches the store
// answers 503 EF_ERR_STORE_UNAVAILABLE and changes nothing; once it is back the
// hub reconnects by itself, with every acknowledged write still there. And a
// hub whose database cannot be reached at start refuses to start with that code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPostgres, type Postgres } from '../../../test/support/postgres.mjs'
import { freePort } from '../../../test/support/mosquitto.mjs'
import { HubStore } from '../../src/store/index.js'
import { startTestHub, waitFor, type TestHub } from '../fixtures/hub.js'

describe('hub on PostgreSQL', () => {
  let pg: Postgres
  let testHub: TestHub
  beforeAll(async () => {
    pg = await startPostgres()
    testHub = await startTestHub({ store: pg.url })
  })
  afterAll(async () => {
    await testHub.close()
    await pg.stop()
  })
  const api = (method: 'GET' | 'POST', url: string, payload?: object) =>
    testHub.hub.api.inject({ method, url, ...(payload ? { payload } : {}) })

  it('answers 503 EF_ERR_STORE_UNAVAILABLE while PostgreSQL restarts, then resumes by itself, losing nothing', async () => {
    expect((await api('POST', '/api/v1/devices', { id: 'before-1', profile: 'gateway-rpi4' })).statusCode).toBe(201)
    await pg.stopServer('fast')

    const during = await api('POST', '/api/v1/devices', { id: 'during-1', profile: 'gateway-rpi4' })
    expect(during.statusCode).toBe(503)
    expect(during.json<{ error: { code: string } }>().error.code).toBe('EF_ERR_STORE_UNAVAILABLE')
    const list = await api('GET', '/api/v1/devices')
    expect(list.statusCode).toBe(503)
    expect(list.json<{ error: { code: string } }>().error.code).toBe('EF_ERR_STORE_UNAVAILABLE')

    await pg.startServer()
    let listed: { statusCode: number; body: string } = { statusCode: 0, body: '' }
    const deadline = Date.now() + 30_000
    while (listed.statusCode !== 200 && Date.now() < deadline) {
      listed = await api('GET', '/api/v1/devices')
      if (listed.statusCode !== 200) await new Promise((r) => setTimeout(r, 200))
    }
    expect(listed.statusCode).toBe(200)
    const ids = (JSON.parse(listed.body) as { items: { id: string }[] }).items.map((d) => d.id)
    // The acknowledged write survived; the refused one was never written.
    expect(ids).toEqual(['before-1'])
    expect((await api('POST', '/api/v1/devices', { id: 'after-1', profile: 'gateway-rpi4' })).statusCode).toBe(201)
    await waitFor(() => testHub.hub.store.devices.get('after-1') !== undefined, 5000, 'after-1 stored')
  })

  it('refuses to open a database nobody serves, with EF_ERR_STORE_UNAVAILABLE', async () => {
    const port = await freePort()
    expect(() => HubStore.open(`postgresql://edgefleet@127.0.0.1:${port}/edgefleet`)).toThrow(
      expect.objectContaining({ code: 'EF_ERR_STORE_UNAVAILABLE' }),
    )
  })
})
