// The agent runtime against real processes: a hub, and agent processes on
// loopback serving a real build of the wake-word head.
// - output semantics registered with `model add --output 39=probability`
//   reach the manifest, and the agent's confidence histograms at the hub match
//   the probabilities it served [EF-2.6.4];
// - malformed inference requests get 400/413 with a code and the agent keeps
//   serving [EF-7.1];
// - the agent's database hits its size cap while the device is offline under
//   load: telemetry is dropped with a count that reaches the hub once it is
//   back, and inference never fails [EF-2.6.3, EF-7.3].
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import Database from 'better-sqlite3'
import {
  startHub,
  startDevice,
  provision,
  waitAllOnline,
  startTcpProxy,
  api,
  cli,
  waitFor,
  wakeInput,
  MODELS,
  type HubProc,
  type AgentProc,
  type TcpProxy,
} from '../support/fleet.mjs'

const PROFILE = 'gateway-rpi4'
const MAX_BODY = 256 * 1024
const MAX_DB = 64 * 1024

/** A JSON answer body: its shape is what the test checks with expect. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- read like the api() helper's bodies
type Json = any

/** POST with a raw body; resolves with status and parsed JSON (never throws on 4xx). */
function post(
  port: number,
  path: string,
  body: Buffer | string,
  headers: Record<string, string | number> = {},
  chunked = false,
): Promise<{ status: number; json: Json }> {
  return new Promise((resolve, reject) => {
    const buf = typeof body === 'string' ? Buffer.from(body) : body
    let answered = false
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        headers: {
          'content-type': 'application/json',
          ...(chunked ? {} : { 'content-length': buf.length }),
          ...headers,
        },
      },
      (res) => {
        answered = true
        const parts: Buffer[] = []
        res.on('data', (c: Buffer) => parts.push(c))
        res.on('end', () => {
          const text = Buffer.concat(parts).toString()
          resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined })
        })
      },
    )
    // The server may answer 413 and close while we are still writing; the answer must arrive all the same.
    req.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
    )
    req.on('close', () => {
      if (!answered) reject(new Error(`${path}: connection closed without an answer`))
    })
    if (chunked) {
      // No content-length: the limit must hold while streaming, not only on the declared size.
      for (let off = 0; off < buf.length; off += 64 * 1024) req.write(buf.subarray(off, off + 64 * 1024))
      req.end()
    } else req.end(buf)
  })
}

const infer = (port: number, inputs: unknown) => post(port, '/v1/models/wake/infer', JSON.stringify({ inputs }))

describe('agent runtime (real hub and agent processes)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-rt-'))
  let hub: HubProc
  let agent: AgentProc
  let full: AgentProc
  let proxy: TcpProxy
  let hubDb: Database.Database
  const secrets: Record<string, string> = {}

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    for (const id of ['rt-1', 'rt-full'])
      secrets[id] = await provision(hub, { id, profile: PROFILE, tags: { suite: 'runtime' } })
    const config = join(tmp, 'agent.json')
    writeFileSync(config, JSON.stringify({ maxBodyBytes: MAX_BODY }))
    proxy = await startTcpProxy(hub.mqttUrl)
    const common = { profile: PROFILE }
    ;[agent, full] = await Promise.all([
      startDevice(hub, {
        ...common,
        id: 'rt-1',
        secret: secrets['rt-1'],
        dataDir: join(tmp, 'rt-1'),
        extraArgs: ['--config', config],
      }),
      // Behind the proxy, so the test can take it offline; a 64 KiB database and fast telemetry fill it in seconds.
      startDevice(hub, {
        ...common,
        id: 'rt-full',
        mqttUrl: proxy.url,
        secret: secrets['rt-full'],
        dataDir: join(tmp, 'rt-full'),
        telemetryMs: 100,
        env: { EF_MAX_DB_BYTES: String(MAX_DB), EF_RECONNECT_MAX_MS: '1000' },
      }),
    ])
    await waitAllOnline(hub)
    hubDb = new Database(join(tmp, 'hub', 'hub.db'), { readonly: true })
  })

  afterAll(async () => {
    hubDb?.close()
    await Promise.all([agent?.stop(), full?.stop()])
    await proxy?.close()
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('registers what output 39 means; a bad kind is a usage error, an unknown output fails the build', async () => {
    const bad = await cli([
      'model',
      'add',
      MODELS.wakeHello,
      '--name',
      'wake',
      '--version',
      '0.9.0',
      '--output',
      '39=confidence',
      '--hub',
      hub.httpUrl,
    ])
    expect(bad.code).toBe(2)
    expect(bad.err).toContain('KIND is one of')
    const unknown = await cli([
      'model',
      'add',
      MODELS.wakeHello,
      '--name',
      'wake',
      '--version',
      '0.9.0',
      '--precision',
      'fp32',
      '--output',
      'nope=scores',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(unknown.code, unknown.err).toBe(0)
    expect(JSON.parse(unknown.out).builds).toEqual([
      expect.objectContaining({ profile: PROFILE, status: 'failed', errorCode: 'EF_ERR_MODEL_INVALID' }),
    ])

    const addResult = await cli([
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
    expect(addResult.code, addResult.err).toBe(0)
    const out = JSON.parse(addResult.out)
    expect(out.version.options).toEqual({ precision: 'fp32', outputs: { '39': 'probability' } })
    expect(out.builds).toEqual([expect.objectContaining({ profile: PROFILE, status: 'ok' })])
    const row = hubDb.prepare("SELECT manifest FROM builds WHERE model = 'wake' AND version = '1.0.0'").get() as {
      manifest: string
    }
    expect(JSON.parse(row.manifest).semantics).toEqual([{ name: '39', kind: 'probability' }])

    const deployResult = await cli([
      'deploy',
      'wake@1.0.0',
      '--target',
      'tag=suite=runtime',
      '--wait',
      '--timeout',
      '60',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(deployResult.code, deployResult.err + deployResult.out).toBe(0)
    expect(JSON.parse(deployResult.out).devices.map((x: { state: string }) => x.state)).toEqual([
      'activated',
      'activated',
    ])
  })

  it('reports a confidence histogram that matches the probabilities the agent served [EF-2.6.4]', async () => {
    const bins = new Array<number>(10).fill(0)
    for (let i = 0; i < 40; i++) {
      const r = await infer(agent.apiPort, wakeInput(100 + i))
      expect(r.status).toBe(200)
      const p = r.json.outputs['39'].data[0] as number
      bins[Math.min(9, Math.floor(p * 10))]++
    }
    const got = await waitFor(
      () => {
        const rows = hubDb
          .prepare("SELECT requests, confidence FROM telemetry WHERE device_id = 'rt-1' AND model = 'wake'")
          .all() as { requests: number; confidence: string | null }[]
        const sum = new Array<number>(10).fill(0)
        let requests = 0
        for (const row of rows) {
          requests += row.requests
          if (row.confidence) (JSON.parse(row.confidence) as number[]).forEach((c, i) => (sum[i] += c))
        }
        return requests >= 40 ? sum : undefined
      },
      { timeoutMs: 15_000, what: 'confidence telemetry' },
    )
    expect(got).toEqual(bins)
  })

  it('answers malformed requests with 400/413 and a code, and keeps serving [EF-7.1]', async () => {
    const good = wakeInput(1)['onnx::Flatten_0']
    const cases: [string, Promise<{ status: number; json: Json }>, number, string][] = [
      ['wrong tensor name', infer(agent.apiPort, { audio: good }), 400, 'EF_ERR_INFER_BAD_TENSOR'],
      ['missing input', infer(agent.apiPort, {}), 400, 'EF_ERR_INFER_BAD_TENSOR'],
      [
        'wrong shape',
        infer(agent.apiPort, { 'onnx::Flatten_0': { ...good, dims: [1, 24, 100] } }),
        400,
        'EF_ERR_INFER_BAD_TENSOR',
      ],
      [
        'wrong rank',
        infer(agent.apiPort, { 'onnx::Flatten_0': { ...good, dims: [25, 96] } }),
        400,
        'EF_ERR_INFER_BAD_TENSOR',
      ],
      [
        'wrong type',
        infer(agent.apiPort, { 'onnx::Flatten_0': { type: 'int32', dims: good.dims, data: good.data.map(() => 1) } }),
        400,
        'EF_ERR_INFER_BAD_TENSOR',
      ],
      [
        'unknown type',
        infer(agent.apiPort, { 'onnx::Flatten_0': { ...good, type: 'float128' } }),
        400,
        'EF_ERR_INFER_BAD_TENSOR',
      ],
      [
        'too few values',
        infer(agent.apiPort, { 'onnx::Flatten_0': { ...good, data: good.data.slice(0, 10) } }),
        400,
        'EF_ERR_INFER_BAD_TENSOR',
      ],
      [
        'bad base64 length',
        infer(agent.apiPort, { 'onnx::Flatten_0': { type: 'float32', dims: good.dims, b64: 'AAAA' } }),
        400,
        'EF_ERR_INFER_BAD_TENSOR',
      ],
      [
        'negative dim',
        infer(agent.apiPort, { 'onnx::Flatten_0': { ...good, dims: [1, -25, 96] } }),
        400,
        'EF_ERR_INFER_BAD_TENSOR',
      ],
      ['not JSON', post(agent.apiPort, '/v1/models/wake/infer', '{"inputs": {'), 400, 'EF_ERR_MSG_JSON'],
      ['no inputs member', post(agent.apiPort, '/v1/models/wake/infer', '[1,2,3]'), 400, 'EF_ERR_INFER_BAD_TENSOR'],
      [
        'binary header past the end',
        post(agent.apiPort, '/v1/models/wake/infer', Buffer.from([0xff, 0, 0, 0, 0x7b]), {
          'content-type': 'application/x-edgefleet-tensors',
        }),
        400,
        'EF_ERR_INFER_BAD_TENSOR',
      ],
      [
        'unknown model',
        post(agent.apiPort, '/v1/models/nope/infer', JSON.stringify({ inputs: { 'onnx::Flatten_0': good } })),
        404,
        'EF_ERR_INFER_MODEL_NOT_LOADED',
      ],
      [
        'oversized body (declared)',
        post(agent.apiPort, '/v1/models/wake/infer', Buffer.alloc(MAX_BODY + 1, 0x20)),
        413,
        'EF_ERR_INFER_BODY_TOO_LARGE',
      ],
      [
        'oversized body (chunked)',
        post(agent.apiPort, '/v1/models/wake/infer', Buffer.alloc(4 * MAX_BODY, 0x20), {}, true),
        413,
        'EF_ERR_INFER_BODY_TOO_LARGE',
      ],
    ]
    for (const [what, p, status, code] of cases) {
      const r = await p
      expect({ what, status: r.status, code: r.json?.error?.code }).toEqual({ what, status, code })
      expect(r.json.error.message.length, what).toBeGreaterThan(0)
    }
    // Still serving, same process, same answers.
    expect(agent.proc.exitCode).toBeNull()
    const after = await Promise.all([1, 2, 3].map((s) => infer(agent.apiPort, wakeInput(s))))
    for (const r of after) expect(r.status).toBe(200)
    expect(after[0].json.outputs['39'].dims).toEqual([1, 1])
  })

  it("refuses a 60 MB JSON tensor by the model's input size with 413 and a code, staying far under its 256 MiB unit limit [EF-7.1.1]", async () => {
    const rssPeakMiB = () =>
      Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${full.proc.pid}/status`, 'utf8'))![1]) / 1024
    // The agent with the default configuration (JSON ceiling 8 MiB, binary 64 MiB); wake takes 2,400 floats.
    const huge = Buffer.alloc(60 * 1024 * 1024, 0x20)
    const head = Buffer.from('{"inputs":{"onnx::Flatten_0":{"type":"float32","dims":[1,25,96],"data":[')
    head.copy(huge)
    for (let i = head.length; i + 4 < huge.length; i += 4) huge.write('0.5,', i, 'latin1')
    for (const chunked of [false, true]) {
      const r = await post(full.apiPort, '/v1/models/wake/infer', huge, {}, chunked)
      expect(r.status, `chunked=${chunked}`).toBe(413)
      expect(r.json.error.code).toBe('EF_ERR_INFER_BODY_TOO_LARGE')
    }
    expect(rssPeakMiB()).toBeLessThan(256)
    // Normal requests still work, as JSON numbers and as base64 bytes.
    const good = wakeInput(3)['onnx::Flatten_0']
    const json = await infer(full.apiPort, { 'onnx::Flatten_0': good })
    expect(json.status).toBe(200)
    const b64 = Buffer.from(new Float32Array(good.data).buffer).toString('base64')
    const viaB64 = await infer(full.apiPort, { 'onnx::Flatten_0': { type: 'float32', dims: good.dims, b64 } })
    expect(viaB64.status).toBe(200)
    expect(viaB64.json.outputs['39'].data[0]).toBeCloseTo(json.json.outputs['39'].data[0], 6)
  })

  it('fills its capped database while offline under load: drops are counted and reach the hub, inference never fails [EF-7.3]', async () => {
    const stats = () => api(`http://127.0.0.1:${full.apiPort}`, 'GET', '/v1/stats')
    proxy.cut()
    await waitFor(async () => !(await stats()).connected, { what: 'rt-full offline' })
    let served = 0
    let failed = 0
    // Load until the cap has dropped a good number of batches (fast telemetry: 10 batches/s of ~1-2 KiB each).
    await waitFor(
      async () => {
        for (let i = 0; i < 20; i++) {
          if ((await infer(full.apiPort, wakeInput(i))).status === 200) served++
          else failed++
        }
        return (await stats()).drops.diskFull >= 20
      },
      { timeoutMs: 30_000, intervalMs: 50, what: 'diskFull drops' },
    )
    expect(failed).toBe(0)
    expect(served).toBeGreaterThan(0)
    const offline = await stats()
    expect(offline.connected).toBe(false)
    expect(offline.queued.telemetry).toBeGreaterThan(0)
    // The cap holds on disk (WAL aside, whose pages are checkpointed into the capped main file).
    expect(statSync(join(tmp, 'rt-full', 'agent.db')).size).toBeLessThanOrEqual(MAX_DB + 4096)

    proxy.restore()
    // Back online: the queue drains and the latest batches carry the drop counters.
    const reported = await waitFor(
      () => {
        const r = hubDb
          .prepare(
            "SELECT dropped, drops FROM telemetry_batches WHERE device_id = 'rt-full' AND drops IS NOT NULL ORDER BY dropped DESC LIMIT 1",
          )
          .get() as { dropped: number; drops: string } | undefined
        return r && JSON.parse(r.drops).diskFull >= offline.drops.diskFull ? r : undefined
      },
      { timeoutMs: 20_000, what: 'drop counters at the hub' },
    )
    const drops = JSON.parse(reported.drops) as { evicted: number; diskFull: number; capped: number }
    expect(reported.dropped).toBe(drops.evicted + drops.diskFull + drops.capped)
    // Inference went on through all of it.
    expect((await infer(full.apiPort, wakeInput(5))).status).toBe(200)
    expect(full.proc.exitCode).toBeNull()
  })
})
