// A device offline for a long period under load, then back [EF-2.6]: a TCP
// proxy between a real agent process and the hub's broker is cut while the
// agent keeps serving; telemetry batches (cut every 200 ms: a compressed clock,
// 15 s offline ≈ 75 batches, i.e. 6 minutes at the default 5 s interval) queue
// in its SQLite outbox. The link then flaps once more while the backlog
// drains, so some PUBACKs are lost and batches are redelivered. At the end the
// hub holds every batch the agent cut exactly once and the request counts match
// what the test was served.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import {
  startHub,
  startDevice,
  provision,
  startTcpProxy,
  api,
  cli,
  waitFor,
  wakeInput,
  type HubProc,
  type AgentProc,
  type TcpProxy,
  MODELS,
} from '../support/fleet.mjs'

const PROFILE = 'gateway-rpi4'
const DEVICE = 'off-1'
const TELEMETRY_MS = 200

describe('offline for a long period under load, then reconnected', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-off-'))
  let hub: HubProc
  let agent: AgentProc
  let proxy: TcpProxy
  let hubDb: Database.Database
  const local = () => `http://127.0.0.1:${agent.apiPort}`
  const stats = () => api(local(), 'GET', '/v1/stats')

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    const secret = await provision(hub, { id: DEVICE, profile: PROFILE })
    proxy = await startTcpProxy(hub.mqttUrl)
    agent = await startDevice(hub, {
      id: DEVICE,
      mqttUrl: proxy.url,
      secret,
      profile: PROFILE,
      dataDir: join(tmp, DEVICE),
      telemetryMs: TELEMETRY_MS,
      env: { EF_RECONNECT_MAX_MS: '1000' },
    })
    const add = await cli([
      'model',
      'add',
      MODELS.wakeHello,
      '--name',
      'wake',
      '--version',
      '1.0.0',
      '--precision',
      'fp32',
      '--output',
      '39=probability',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(add.code, add.err).toBe(0)
    const deployResult = await cli([
      'deploy',
      'wake@1.0.0',
      '--target',
      `device=${DEVICE}`,
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
    await proxy?.close()
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('the hub ends up with every batch exactly once and the same request counts', async () => {
    let served = 0
    let failed = 0
    let running = true
    // Two clients keep the agent busy throughout, online or not.
    const load = Promise.all(
      [1, 2].map(async (c) => {
        for (let i = 0; running; i++) {
          const r = await fetch(`${local()}/v1/models/wake/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ inputs: wakeInput(c * 100_000 + i) }),
          })
          await r.arrayBuffer()
          if (r.ok) served++
          else failed++
          // A device's pace, not a benchmark: keeps the backlog in rows, not CPU.
          await new Promise((res) => setTimeout(res, 5))
        }
      }),
    )
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

    await sleep(1500)
    proxy.cut()
    await waitFor(async () => !(await stats()).connected, { what: 'agent offline' })
    const cutAt = await stats()
    await sleep(15_000)
    const offline = await stats()
    // The backlog built up on disk while offline.
    expect(offline.connected).toBe(false)
    expect(offline.batchesCut - cutAt.batchesCut).toBeGreaterThanOrEqual(40)
    expect(offline.queued.telemetry).toBeGreaterThanOrEqual(40)
    const beforeReconnect = (
      hubDb.prepare('SELECT count(*) AS n FROM telemetry_batches WHERE device_id = ?').get(DEVICE) as { n: number }
    ).n

    // Back online; flap once more while the backlog drains, so PUBACKs are lost mid-stream.
    proxy.restore()
    await waitFor(async () => (await stats()).connected, {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'agent reconnected',
    })
    await waitFor(
      () =>
        (hubDb.prepare('SELECT count(*) AS n FROM telemetry_batches WHERE device_id = ?').get(DEVICE) as { n: number })
          .n > beforeReconnect,
      { intervalMs: 5, what: 'drain started' },
    )
    proxy.cut()
    await sleep(1000)
    proxy.restore()
    await sleep(2000)
    running = false
    await load
    expect(failed).toBe(0)

    // Quiescent: no requests, nothing queued, no new batch for a few intervals.
    const final = await waitFor(
      async () => {
        const a = await stats()
        await sleep(TELEMETRY_MS * 3)
        const b = await stats()
        if (b.connected && !b.queued.telemetry && a.batchesCut === b.batchesCut) return b
        throw new Error(`not drained: ${JSON.stringify(b)}`)
      },
      { timeoutMs: 30_000, what: 'outbox drained' },
    )
    expect(final.drops).toEqual({ evicted: 0, diskFull: 0, capped: 0 })

    const batches = hubDb
      .prepare('SELECT count(*) AS n, count(DISTINCT batch_id) AS d FROM telemetry_batches WHERE device_id = ?')
      .get(DEVICE) as { n: number; d: number }
    expect(batches.n).toBe(final.batchesCut)
    expect(batches.d).toBe(batches.n)
    // One model version served: exactly one telemetry row per batch, none twice.
    const rows = hubDb
      .prepare(
        'SELECT count(*) AS n, count(DISTINCT batch_id) AS d, sum(requests) AS requests, sum(errors) AS errors FROM telemetry WHERE device_id = ?',
      )
      .get(DEVICE) as { n: number; d: number; requests: number; errors: number }
    expect(rows.n).toBe(batches.n)
    expect(rows.d).toBe(rows.n)
    expect(rows.requests).toBe(served)
    expect(rows.errors).toBe(0)
    // Batch windows tile the timeline: no window stored twice or overlapping.
    const windows = hubDb
      .prepare('SELECT ts_from AS f, ts_to AS t FROM telemetry_batches WHERE device_id = ? ORDER BY ts_from')
      .all(DEVICE) as { f: number; t: number }[]
    for (let i = 1; i < windows.length; i++) expect(windows[i].f).toBeGreaterThanOrEqual(windows[i - 1].t)
    expect(served).toBeGreaterThan(100)
  })
})
