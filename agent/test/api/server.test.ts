// The local inference API on a real HTTP server (port 0) serving hello_deepa
// through a real ORT session: results equal a direct run; every malformed
// request gets its status and code, and the server keeps serving.
import { request as httpRequest, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  decodeTensor,
  encodeTensor,
  generateSigningKeys,
  privateKeyFromPem,
  tensorsClose,
  type TensorValue,
} from '@edgefleet/shared'
import { ModelHost } from '../../src/runtime/host.js'
import { LINGER_MS, createApiServer } from '../../src/api/server.js'
import { MODELS, WAKE_INPUT, WAKE_OUTPUT, buildWake, referenceRun, type WakeTensor } from '../fixtures/agent.js'
import type { Tensor } from '../../src/runtime/session.js'

const MAX_BODY = 256 * 1024

describe('local inference API', () => {
  let host: ModelHost
  let server: Server
  let base: string
  let ref: { input: WakeTensor; outputs: Record<string, Tensor> }
  const observed: [string, string, boolean][] = []

  beforeAll(async () => {
    const key = privateKeyFromPem(generateSigningKeys().privateKeyPem)
    const b = await buildWake(MODELS.hello, { key, version: '1.2' })
    host = new ModelHost({ threads: 1, executionProviders: ['cpu'] })
    host.onInfer((m, v, _ms, ok) => observed.push([m, v, ok]))
    host.activate(b.manifest, 'a', await host.open(MODELS.hello))
    server = createApiServer({ host, maxBodyBytes: MAX_BODY, deviceId: 'dev-1' })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    ref = await referenceRun(MODELS.hello, 3)
  })
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()))
    await host?.close()
  })

  const infer = (body: unknown, model = 'wake') =>
    fetch(`${base}/v1/models/${model}/infer`, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    })
  const json = (t: Tensor) => encodeTensor(t.type, t.dims, t.data)

  async function expectError(res: Response, status: number, code: string) {
    const body = (await res.json()) as { error?: { code?: string; message?: string } }
    expect({ status: res.status, code: body.error?.code }).toEqual({ status, code })
    expect(body.error?.message?.length).toBeGreaterThan(0)
  }

  async function expectValid() {
    const res = await infer({ inputs: { [WAKE_INPUT]: json(ref.input) } })
    expect(res.status).toBe(200)
    const body = (await res.json()) as {
      model: string
      version: string
      latencyMs: number
      outputs: Record<string, TensorValue>
    }
    expect(body.model).toBe('wake')
    expect(body.version).toBe('1.2')
    expect(body.latencyMs).toBeGreaterThan(0)
    const got = decodeTensor(WAKE_OUTPUT, body.outputs[WAKE_OUTPUT])
    const want = ref.outputs[WAKE_OUTPUT]
    expect(got.dims).toEqual(want.dims)
    const r = tensorsClose(got.data, want.data, 1e-6, 0)
    expect(r.ok, `max abs diff ${r.maxAbsDiff}`).toBe(true)
  }

  it('a JSON request returns the outputs of a direct ORT run (within 1e-6)', async () => {
    await expectValid()
    expect(observed.at(-1)).toEqual(['wake', '1.2', true])
  })

  it('binary:true answers in b64, bit-identical to the JSON numbers', async () => {
    const res = await infer({
      inputs: { [WAKE_INPUT]: encodeTensor('float32', ref.input.dims, ref.input.data, true) },
      binary: true,
    })
    expect(res.status).toBe(200)
    const out = ((await res.json()) as { outputs: Record<string, TensorValue> }).outputs[WAKE_OUTPUT]
    expect(out.b64).toBeTypeOf('string')
    expect(out.data).toBeUndefined()
    const got = decodeTensor(WAKE_OUTPUT, out)
    expect(tensorsClose(got.data, ref.outputs[WAKE_OUTPUT].data, 1e-6, 0).ok).toBe(true)
  })

  it.each([
    ['an unknown tensor name', () => ({ inputs: { wrong: json(ref.input) } })],
    ['an extra tensor', () => ({ inputs: { [WAKE_INPUT]: json(ref.input), extra: json(ref.input) } })],
    ['no tensor at all', () => ({ inputs: {} })],
    ['a wrong type', () => ({ inputs: { [WAKE_INPUT]: { ...json(ref.input), type: 'int32' } } })],
    [
      'a wrong shape',
      () => ({
        inputs: {
          [WAKE_INPUT]: { type: 'float32', dims: [1, 24, 96], data: Array.from(ref.input.data.subarray(0, 24 * 96)) },
        },
      }),
    ],
    [
      'a wrong rank',
      () => ({ inputs: { [WAKE_INPUT]: { type: 'float32', dims: [25, 96], data: Array.from(ref.input.data) } } }),
    ],
    [
      'a data length that does not match dims',
      () => ({ inputs: { [WAKE_INPUT]: { type: 'float32', dims: [1, 25, 96], data: [1, 2, 3] } } }),
    ],
    [
      'a b64 length that does not match dims',
      () => ({
        inputs: { [WAKE_INPUT]: { type: 'float32', dims: [1, 25, 96], b64: Buffer.alloc(12).toString('base64') } },
      }),
    ],
    ['non-numeric data', () => ({ inputs: { [WAKE_INPUT]: { type: 'float32', dims: [1], data: ['x'] } } })],
    ['neither data nor b64', () => ({ inputs: { [WAKE_INPUT]: { type: 'float32', dims: [1, 25, 96] } } })],
    ['negative dims', () => ({ inputs: { [WAKE_INPUT]: { type: 'float32', dims: [-1, 25, 96], data: [] } } })],
    ['no inputs member', () => ({ tensors: {} })],
    ['inputs as an array', () => ({ inputs: [json(ref.input)] })],
    ['a JSON scalar', () => 42],
  ])('%s → 400 EF_ERR_INFER_BAD_TENSOR', async (_what, body) => {
    await expectError(await infer(body()), 400, 'EF_ERR_INFER_BAD_TENSOR')
  })

  it('a body that is not JSON → 400 EF_ERR_MSG_JSON', async () => {
    await expectError(await infer('{"inputs": {'), 400, 'EF_ERR_MSG_JSON')
  })

  it('an unknown model → 404 EF_ERR_INFER_MODEL_NOT_LOADED', async () => {
    await expectError(
      await infer({ inputs: { [WAKE_INPUT]: json(ref.input) } }, 'namaste'),
      404,
      'EF_ERR_INFER_MODEL_NOT_LOADED',
    )
  })

  it('a body over maxBodyBytes (declared) → 413 EF_ERR_INFER_BODY_TOO_LARGE', async () => {
    await expectError(await infer('x'.repeat(MAX_BODY + 1)), 413, 'EF_ERR_INFER_BODY_TOO_LARGE')
  })

  it('a chunked body that grows over maxBodyBytes → 413 EF_ERR_INFER_BODY_TOO_LARGE', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        `${base}/v1/models/wake/infer`,
        { method: 'POST', headers: { 'transfer-encoding': 'chunked' } },
        (res) => {
          let b = ''
          res.on('data', (c: Buffer) => (b += c.toString()))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }))
        },
      )
      req.on('error', reject)
      const piece = Buffer.alloc(64 * 1024, 0x20)
      for (let i = 0; i < 6; i++) req.write(piece)
      req.end()
    })
    expect(status).toBe(413)
    expect((JSON.parse(body) as { error: { code: string } }).error.code).toBe('EF_ERR_INFER_BODY_TOO_LARGE')
  })

  it('answers 413 in full to a client still sending, and closes a body that never ends after LINGER_MS', async () => {
    // A hostile client declares 100 MB and trickles it: the answer must arrive at once, whole,
    // and the connection must not stay open for as long as the client cares to send.
    const port = Number(new URL(base).port)
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => undefined) // a reset after the answer is allowed
    socket.write(
      `POST /v1/models/wake/infer HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${100 * 1024 * 1024}\r\n\r\n`,
    )
    const trickle = setInterval(() => socket.writable && socket.write(Buffer.alloc(16 * 1024, 0x20)), 50)
    const started = Date.now()
    let text = ''
    let answeredAfter = -1
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (answeredAfter < 0 && text.includes('}}')) answeredAfter = Date.now() - started
    })
    await new Promise((resolve) => socket.once('close', resolve))
    clearInterval(trickle)
    const closedAfter = Date.now() - started
    expect(text).toMatch(/^HTTP\/1\.1 413 /)
    expect(text.toLowerCase()).toContain('connection: close')
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error.code).toBe('EF_ERR_INFER_BODY_TOO_LARGE')
    expect(answeredAfter).toBeGreaterThanOrEqual(0)
    expect(answeredAfter).toBeLessThan(LINGER_MS)
    expect(closedAfter).toBeGreaterThanOrEqual(LINGER_MS - 100)
    expect(closedAfter).toBeLessThan(LINGER_MS + 3000)
  })

  it('unknown routes → 404 EF_ERR_HTTP_NOT_FOUND', async () => {
    await expectError(
      await fetch(`${base}/v1/models/wake/train`, { method: 'POST', body: '{}' }),
      404,
      'EF_ERR_HTTP_NOT_FOUND',
    )
    await expectError(await fetch(`${base}/nothing`), 404, 'EF_ERR_HTTP_NOT_FOUND')
    await expectError(
      await fetch(`${base}/v1/models/a%2Fb/infer`, { method: 'POST', body: '{}' }),
      404,
      'EF_ERR_HTTP_NOT_FOUND',
    )
  })

  it('lists the served model and answers /healthz', async () => {
    const models = (await (await fetch(`${base}/v1/models`)).json()) as {
      items: { name: string; version: string; slot: string; precision: string }[]
    }
    expect(models.items.map((m) => [m.name, m.version, m.slot, m.precision])).toEqual([['wake', '1.2', 'a', 'fp32']])
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true, deviceId: 'dev-1', models: 1 })
  })

  it('still serves a valid request after all the bad ones', async () => {
    await expectValid()
  })
})
