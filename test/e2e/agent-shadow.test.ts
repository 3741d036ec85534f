// Champion/challenger and capture with real processes [EF-2.3.4-7, EF-2.6.6,
// EF-2.9]: the hub's runtime-command routes sign and send commands to a real
// agent process, which shadows a second build of the live model (the int8
// build beside the fp32 one), reports comparisons that reach GET
// /api/v1/shadow, discards or promotes it; capture policies pushed through the
// API bring samples back to GET /api/v1/samples within the policy's byte caps;
// simulated conditions land in the device's state.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import {
  startHub,
  startAgent,
  api,
  cli,
  waitFor,
  wakeInput,
  MODELS,
  type HubProc,
  type AgentProc,
} from '../support/fleet.mjs'

const PROFILE = 'gateway-rpi4'
const DEV = 'sh-1'

describe('shadow, promote, discard and capture through the hub API', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-shadow-'))
  let hub: HubProc
  let agent: AgentProc
  let hubDb: Database.Database
  const local = () => `http://127.0.0.1:${agent.apiPort}`
  const stats = () => api(local(), 'GET', '/v1/stats')
  /** Requests the capture policy decided on: captured or capped. */
  const decided = (s: { capture: { captured: number; capped: number } }) => s.capture.captured + s.capture.capped
  const infer = (seed: number) => api(local(), 'POST', '/v1/models/wake/infer', { inputs: wakeInput(seed) })
  const send = (what: string, body: unknown, device = DEV) =>
    api(hub.httpUrl, 'POST', `/api/v1/devices/${device}/${what}`, body)
  /** The device's last event for a command, once it reached one of `kinds`. */
  const outcome = (cmdId: string, kinds: string[]) =>
    waitFor(
      async () =>
        (
          (await api(hub.httpUrl, 'GET', `/api/v1/devices/${DEV}`)).events as {
            cmdId?: string
            kind: string
            code?: string
            message?: string
          }[]
        ).find((e) => e.cmdId === cmdId && kinds.includes(e.kind)),
      { timeoutMs: 30_000, what: `outcome of ${cmdId}` },
    )
  const shadowRow = async (candidate: string) =>
    (
      (await api(hub.httpUrl, 'GET', '/api/v1/shadow?model=wake')).items as {
        version: string
        candidate: string
        runs: number
        skipped: number
        errors: number
        agreement: number
        meanCosine: number
        maxAbsDiff: number
        p50Ms: number
      }[]
    ).find((r) => r.candidate === candidate)

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    const { secret } = await api(hub.httpUrl, 'POST', '/api/v1/devices', { id: DEV, profile: PROFILE })
    agent = await startAgent({
      mqttUrl: hub.mqttUrl,
      deviceId: DEV,
      secret,
      hubKey: hub.publicKey,
      profile: PROFILE,
      dataDir: join(tmp, DEV),
      telemetryMs: 200,
    })
    // Champion fp32, challenger int8: the same head, so top-1 mostly agrees and outputs differ a little.
    for (const [version, precision] of [
      ['1.0.0', 'fp32'],
      ['1.1.0', 'int8-dynamic'],
    ]) {
      const addResult = await cli([
        'model',
        'add',
        MODELS.wakeHello,
        '--name',
        'wake',
        '--version',
        version,
        '--precision',
        precision,
        '--output',
        '39=probability',
        '--hub',
        hub.httpUrl,
        '--json',
      ])
      expect(addResult.code, addResult.err).toBe(0)
      expect(JSON.parse(addResult.out).builds).toEqual([expect.objectContaining({ status: 'ok', precision })])
    }
    const deployResult = await cli([
      'deploy',
      'wake@1.0.0',
      '--target',
      `device=${DEV}`,
      '--wait',
      '--timeout',
      '60',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(deployResult.code, deployResult.err + deployResult.out).toBe(0)
    hubDb = new Database(join(tmp, 'hub', 'hub.db'), { readonly: true })
  })

  afterAll(async () => {
    hubDb?.close()
    await agent?.stop()
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('refuses commands for an unknown device or version', async () => {
    await expect(send('shadow', { model: 'wake', version: '1.1.0', fraction: 1 }, 'nope')).rejects.toMatchObject({
      status: 404,
      body: { error: { code: 'EF_ERR_DEVICE_NOT_FOUND' } },
    })
    await expect(send('shadow', { model: 'wake', version: '9.9.9', fraction: 1 })).rejects.toMatchObject({
      status: 404,
      body: { error: { code: 'EF_ERR_MODEL_NOT_FOUND' } },
    })
    await expect(send('shadow', { model: 'wake', version: '1.1.0', fraction: 2 })).rejects.toMatchObject({
      status: 400,
    })
  })

  it('shadows the candidate beside the live version; comparisons reach the hub; discard stops it', async () => {
    const { cmdId } = await send('shadow', { model: 'wake', version: '1.1.0', fraction: 1 })
    expect(await outcome(cmdId, ['staged', 'failed', 'rejected', 'health_failed'])).toMatchObject({
      kind: 'staged',
      message: 'shadowing',
      version: '1.1.0',
    })
    expect((await stats()).shadow).toEqual([{ model: 'wake', candidate: '1.1.0', fraction: 1 }])
    for (let i = 0; i < 30; i++) {
      const r = await infer(i)
      // Live answers still come from the champion.
      expect(r.version).toBe('1.0.0')
    }
    const row = await waitFor(
      async () => {
        const r = await shadowRow('1.1.0')
        return r && r.runs + r.skipped >= 30 ? r : undefined
      },
      { what: 'shadow comparisons at the hub' },
    )
    // Every request was sampled (fraction 1): compared, or skipped while a run was in flight.
    expect(row.runs + row.skipped).toBe(30)
    expect(row.runs).toBeGreaterThan(0)
    expect(row).toMatchObject({ version: '1.0.0', errors: 0 })
    // int8 vs fp32 of the same head: close, not identical.
    expect(row.maxAbsDiff).toBeGreaterThan(0)
    expect(row.maxAbsDiff).toBeLessThan(0.5)
    expect(row.meanCosine).toBeGreaterThan(0.9)
    expect(row.agreement).toBeGreaterThanOrEqual(0)
    expect(row.agreement).toBeLessThanOrEqual(1)
    expect(row.p50Ms).toBeGreaterThan(0)

    const discard = await send('discard', { model: 'wake', version: '1.1.0' })
    expect(await outcome(discard.cmdId, ['staged', 'failed'])).toMatchObject({ kind: 'staged', message: 'discarded' })
    expect((await stats()).shadow).toEqual([])
    for (let i = 0; i < 10; i++) expect((await infer(100 + i)).version).toBe('1.0.0')
    await new Promise((r) => setTimeout(r, 600))
    const after = await shadowRow('1.1.0')
    expect(after!.runs + after!.skipped).toBe(30)
    // Nothing left to discard or promote.
    const again = await send('discard', { model: 'wake' })
    expect(await outcome(again.cmdId, ['staged', 'failed'])).toMatchObject({
      kind: 'failed',
      code: 'EF_ERR_SHADOW_NOT_FOUND',
    })
    const none = await send('promote', { model: 'wake', version: '1.1.0' })
    expect(await outcome(none.cmdId, ['activated', 'failed'])).toMatchObject({
      kind: 'failed',
      code: 'EF_ERR_SHADOW_NOT_FOUND',
    })
  })

  it('promotes a shadowed candidate: the device serves it and the hub sees it live', async () => {
    const { cmdId } = await send('shadow', { model: 'wake', version: '1.1.0', fraction: 0.5 })
    expect(await outcome(cmdId, ['staged', 'failed', 'rejected', 'health_failed'])).toMatchObject({
      kind: 'staged',
      message: 'shadowing',
    })
    const p = await send('promote', { model: 'wake', version: '1.1.0' })
    expect(await outcome(p.cmdId, ['activated', 'failed'])).toMatchObject({ kind: 'activated', version: '1.1.0' })
    expect((await infer(7)).version).toBe('1.1.0')
    const models = await api(local(), 'GET', '/v1/models')
    expect(models.items).toEqual([
      expect.objectContaining({ name: 'wake', version: '1.1.0', precision: 'int8-dynamic' }),
    ])
    expect((await stats()).shadow).toEqual([])
    await waitFor(
      async () =>
        (await api(hub.httpUrl, 'GET', `/api/v1/devices/${DEV}`)).device.models.find(
          (m: { version: string }) => m.version === '1.1.0',
        ),
      { what: 'hub sees 1.1.0 live' },
    )
    // The previous version stays in the other slot: a signed rollback returns to it.
    const rb = await cli([
      'deploy',
      'wake@1.0.0',
      '--rollback',
      '--target',
      `device=${DEV}`,
      '--wait',
      '--timeout',
      '60',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(rb.code, rb.err + rb.out).toBe(0)
    expect((await infer(7)).version).toBe('1.0.0')
  })

  it('capture policy: low-confidence samples reach the hub within the hourly byte cap; an empty policy stops capture', async () => {
    const maxBytesPerHour = 60_000
    const { cmdId } = await send('capture-policy', {
      policies: [{ model: 'wake', random: 0, confidenceBelow: 0.99, maxBytesPerHour, maxBytesOnDisk: 1_000_000 }],
    })
    expect(await outcome(cmdId, ['received'])).toMatchObject({ message: expect.stringContaining('1 policy') })
    const confidences: number[] = []
    for (let i = 0; i < 30; i++) confidences.push((await infer(200 + i)).outputs['39'].data[0])
    const eligible = confidences.filter((c) => c < 0.99).length
    expect(eligible).toBeGreaterThan(5)
    const settled = await waitFor(
      async () => {
        const x = await stats()
        return x.capture.captured > 0 && decided(x) === eligible && !x.queued.sample ? x : undefined
      },
      { what: 'captures settled and sent' },
    )
    // ~13 KB per sample (2400 floats in base64): the cap lets only a few through.
    expect(settled.capture.capped).toBeGreaterThan(0)
    expect(settled.capture.capturedBytes).toBeLessThanOrEqual(maxBytesPerHour)

    // The feed, page by page with the cursor. The hub writes samples in batched transactions [EF-9.1]:
    // the broker's PUBACK to the agent comes before the hub's commit (≤ flushMs), so read until all are in.
    interface Item {
      deviceId: string
      model: string
      version: string
      reason: string
      confidence: number
      bytes: number
      cursor: number
    }
    const items = await waitFor(
      async () => {
        const got: Item[] = []
        let cursor: number | null = 0
        while (cursor !== null) {
          const page: { items: Item[]; next: number | null } = await api(
            hub.httpUrl,
            'GET',
            `/api/v1/samples?model=wake&limit=2&cursor=${cursor}`,
          )
          expect(page.items.length).toBeLessThanOrEqual(2)
          got.push(...page.items)
          cursor = page.next
        }
        return got.length >= settled.capture.captured ? got : undefined
      },
      { what: 'the captured samples stored on the hub' },
    )
    expect(items.length).toBe(settled.capture.captured)
    expect(new Set(items.map((x) => x.cursor)).size).toBe(items.length)
    for (const x of items) {
      expect(x).toMatchObject({ deviceId: DEV, model: 'wake', version: '1.0.0', reason: 'low_confidence' })
      expect(x.confidence).toBeLessThan(0.99)
    }
    expect(items.reduce((a, x) => a + x.bytes, 0)).toBe(settled.capture.capturedBytes)
    // What the hub stored is the device's tensor, intact.
    const stored = hubDb.prepare('SELECT payload FROM samples WHERE device_id = ? LIMIT 1').get(DEV) as {
      payload: string
    }
    const sample = JSON.parse(stored.payload)
    expect(sample.inputs['onnx::Flatten_0']).toMatchObject({ type: 'float32', dims: [1, 25, 96] })
    expect(Buffer.from(sample.inputs['onnx::Flatten_0'].b64, 'base64').length).toBe(25 * 96 * 4)

    const stop = await send('capture-policy', { policies: [] })
    await outcome(stop.cmdId, ['received'])
    const before = await stats()
    expect(before.capture.policies).toBe(0)
    for (let i = 0; i < 10; i++) await infer(300 + i)
    const after = await stats()
    expect(decided(after)).toBe(decided(before))
  })

  it('simulated conditions land in the device state at the hub, and null returns to what the OS shows', async () => {
    const state = () =>
      JSON.parse((hubDb.prepare('SELECT state FROM devices WHERE id = ?').get(DEV) as { state: string }).state)
    const { cmdId } = await send('conditions', { network: 'metered', power: 'battery', idle: false })
    expect(await outcome(cmdId, ['received'])).toMatchObject({ kind: 'received' })
    await waitFor(() => state().network === 'metered' && state().power === 'battery' && state().idle === false, {
      what: 'conditions in state',
    })
    const reset = await send('conditions', { network: null, power: null })
    await outcome(reset.cmdId, ['received'])
    await waitFor(() => state().network !== 'metered' && state().power !== 'battery', { what: 'conditions reset' })
    expect(state().idle).toBe(false)
  })
})
