// Bulk provisioning [EF-1.3.5] against a real in-process hub: the batch API
// and `edgefleet devices import FILE.csv`. A good import provisions every
// device (each secret authenticates on the real embedded broker); a bad row
// anywhere refuses the whole import with its row number and code, and the
// device count shows nothing was half-written.
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/edgefleet.js'
import { parseDevicesCsv } from '../../src/cli/device-import.js'
import { connectDevice, provision, startTestHub, type TestHub } from '../fixtures/hub.js'

let testHub: TestHub
const dir = mkdtempSync(join(tmpdir(), 'ef-import-'))

const batch = (devices: unknown[]) =>
  testHub.hub.api.inject({ method: 'POST', url: '/api/v1/devices:batch', payload: { devices } })
const count = async () =>
  (await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/devices?limit=1' })).json().total as number

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const sink = (add: (s: string) => void) =>
    ({
      write: (s: string | Uint8Array) => (add(typeof s === 'string' ? s : Buffer.from(s).toString()), true),
    }) as unknown as NodeJS.WriteStream
  const code = await main(
    [...argv, '--hub', testHub.hub.httpUrl],
    sink((s) => (out += s)),
    sink((s) => (err += s)),
  )
  return { code, out, err }
}

beforeAll(async () => {
  testHub = await startTestHub()
  await provision(testHub.hub, 'old-1')
  expect((await testHub.hub.api.inject({ method: 'DELETE', url: '/api/v1/devices/old-1' })).statusCode).toBe(204)
})
afterAll(() => testHub?.close())

describe('POST /api/v1/devices:batch', () => {
  it('provisions every device in one call, each with a secret that works on the broker', async () => {
    const devices = Array.from({ length: 500 }, (_, i) => ({
      id: `b-${i}`,
      profile: i % 2 ? 'gateway-rpi4' : 'industrial-x86',
      tags: { site: `s${i % 7}` },
    }))
    const before = await count()
    const res = await batch(devices)
    expect(res.statusCode).toBe(201)
    const body = res.json<{ imported: number; devices: { id: string; secret: string }[]; hubPublicKey: string }>()
    expect(body.imported).toBe(500)
    expect(body.devices.map((d) => d.id)).toEqual(devices.map((d) => d.id))
    expect(new Set(body.devices.map((d) => d.secret)).size).toBe(500)
    expect(await count()).toBe(before + 500)
    const d = testHub.hub.store.devices.get('b-7')
    expect(d?.tags).toEqual({ site: 's0' })
    expect(d?.profile).toBe('gateway-rpi4')
    const c = await connectDevice(testHub.hub.mqttUrl, 'b-499', body.devices[499].secret)
    c.end(true)
    await expect(connectDevice(testHub.hub.mqttUrl, 'b-498', body.devices[499].secret)).rejects.toThrow()
  })

  const bad: [string, (rows: Record<string, unknown>[]) => void, number, string][] = [
    ['unknown profile', (r) => (r[41].profile = 'toaster-9000'), 42, 'EF_ERR_PROFILE_UNKNOWN'],
    ['invalid id', (r) => (r[3].id = 'bad id!'), 4, 'EF_ERR_DEVICE_ID_INVALID'],
    ['id twice in the import', (r) => (r[9].id = r[2].id), 10, 'EF_ERR_DEVICE_EXISTS'],
    ['id already provisioned', (r) => (r[99].id = 'b-1'), 100, 'EF_ERR_DEVICE_EXISTS'],
    ['id of a removed device', (r) => (r[0].id = 'old-1'), 1, 'EF_ERR_DEVICE_REMOVED'],
    ['missing profile', (r) => delete r[5].profile, 6, 'EF_ERR_HTTP_BAD_REQUEST'],
    ['bad tag key', (r) => (r[7].tags = { 'no spaces': 'x' }), 8, 'EF_ERR_HTTP_BAD_REQUEST'],
    ['extra field', (r) => (r[8].secret = 'mine'), 9, 'EF_ERR_HTTP_BAD_REQUEST'],
  ]
  for (const [what, spoil, row, code] of bad)
    it(`refuses the whole import for a row with ${what}: row ${row}, ${code}, nothing written`, async () => {
      const rows: Record<string, unknown>[] = Array.from({ length: 100 }, (_, i) => ({
        id: `x-${i}`,
        profile: 'gateway-rpi4',
      }))
      spoil(rows)
      const before = await count()
      const res = await batch(rows)
      expect(res.statusCode).toBe(400)
      const { error } = res.json<{ error: { code: string; message: string } }>()
      expect(error.code).toBe('EF_ERR_IMPORT_ROW_INVALID')
      expect(error.message).toContain(`row ${row}: ${code}`)
      expect(await count()).toBe(before)
      expect(testHub.hub.store.devices.get('x-50')).toBeUndefined()
    })

  it('is documented at its real path, and single provisioning refuses a tag key outside the pattern too', async () => {
    const doc = (await testHub.hub.api.inject({ method: 'GET', url: '/docs/openapi.json' })).json<{ paths: object }>()
    expect(Object.keys(doc.paths)).toContain('/api/v1/devices:batch')
    const res = await testHub.hub.api.inject({
      method: 'POST',
      url: '/api/v1/devices',
      payload: { id: 'tagged', profile: 'gateway-rpi4', tags: { 'no spaces': 'x' } },
    })
    expect(res.json().error.code).toBe('EF_ERR_HTTP_BAD_REQUEST')
    expect(testHub.hub.store.devices.get('tagged')).toBeUndefined()
  })

  it('refuses an empty import and one over 10,000 rows', async () => {
    expect((await batch([])).json().error.code).toBe('EF_ERR_HTTP_BAD_REQUEST')
    const big = Array.from({ length: 10_001 }, (_, i) => ({ id: `y-${i}`, profile: 'gateway-rpi4' }))
    expect((await batch(big)).json().error.code).toBe('EF_ERR_HTTP_BAD_REQUEST')
    expect(testHub.hub.store.devices.get('y-0')).toBeUndefined()
  })
})

describe('edgefleet devices import FILE.csv', () => {
  it('parses quoted fields and tags', () => {
    expect(parseDevicesCsv('id,profile,tags\r\n"c-1",gateway-rpi4,"site=a;line=2"\nc-2,industrial-x86,\n')).toEqual([
      { id: 'c-1', profile: 'gateway-rpi4', tags: { site: 'a', line: '2' } },
      { id: 'c-2', profile: 'industrial-x86', tags: {} },
    ])
  })

  it('imports a CSV and writes the secrets once, mode 0600, never over an existing file', async () => {
    const csv = join(dir, 'fleet.csv')
    const out = join(dir, 'fleet-secrets.csv')
    writeFileSync(
      csv,
      ['id,profile,tags', ...Array.from({ length: 30 }, (_, i) => `c-${i},gateway-rpi4,site=z`)].join('\n'),
    )
    const r = await cli(['devices', 'import', csv, '--out', out])
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    expect(r.out).toContain('30 devices provisioned')
    const lines = readFileSync(out, 'utf8').trim().split('\n')
    expect(lines[0]).toBe('id,secret')
    expect(lines).toHaveLength(31)
    expect(statSync(out).mode & 0o777).toBe(0o600)
    const [id, secret] = lines[5].split(',')
    const c = await connectDevice(testHub.hub.mqttUrl, id, secret)
    c.end(true)
    const again = await cli(['devices', 'import', csv, '--out', out])
    expect(again.code).toBe(1)
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(31)
  })

  it('a bad row (wrong field count, unknown profile) refuses the file with its row number and code; no secrets file', async () => {
    const before = await count()
    for (const [body, row, code] of [
      ['id,profile\nd-1,gateway-rpi4\nd-2,gateway-rpi4,extra\n', 2, 'EF_ERR_HTTP_BAD_REQUEST'],
      ['id,profile\nd-1,gateway-rpi4\nd-2,gateway-rpi4\nd-3,nope\n', 3, 'EF_ERR_PROFILE_UNKNOWN'],
    ] as const) {
      const csv = join(dir, `bad-${row}.csv`)
      const out = join(dir, `bad-${row}-secrets.csv`)
      writeFileSync(csv, body)
      const r = await cli(['devices', 'import', csv, '--out', out])
      expect(r.code).toBe(1)
      expect(r.err).toContain('EF_ERR_IMPORT_ROW_INVALID')
      expect(r.err).toContain(`row ${row}: ${code}`)
      expect(existsSync(out)).toBe(false)
    }
    expect(await count()).toBe(before)
    expect(testHub.hub.store.devices.get('d-1')).toBeUndefined()
  })
})
