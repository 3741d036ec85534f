// Property-based fuzzing of the agent's local inference API [EF-2.5, EF-7.1]
// on a real HTTP server with hello_deepa loaded in a real ORT session: JSON
// requests (schema-shaped tensors with hostile types, dims, data and b64;
// random JSON; random bytes) and binary requests (valid layouts with hostile
// header fields, and byte-mutated valid bodies). Properties: every answer is
// a 200 or a 4xx with a catalogue EF_ERR_* code, nothing hangs, and the server
// still answers a valid request with the reference outputs afterwards.
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateSigningKeys, isErrorCode, privateKeyFromPem } from '@edgefleet/shared'
import { ModelHost } from '../../src/runtime/host.js'
import { createApiServer } from '../../src/api/server.js'
import { BINARY_CONTENT_TYPE, encodeBinaryRequest } from '../../src/api/binary.js'
import { MODELS, WAKE_DIMS, WAKE_INPUT, buildWake, wakeInput } from '../fixtures/agent.js'
import {
  deadline,
  fuzzParams,
  hostileNumber,
  hostileString,
  hostileValue,
  jsonText,
  junkPayload,
  mutate,
  mutatedBytes,
  Raw,
} from '../../../test/support/fuzz.mjs'

const MAX_BODY = 256 * 1024
const COUNT = WAKE_DIMS.reduce((a, b) => a * b, 1)
const TYPES = [
  'float32',
  'float16',
  'float64',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'bool',
]

const tensorType = fc.oneof(
  { weight: 4, arbitrary: fc.constant('float32') },
  { weight: 2, arbitrary: fc.constantFrom(...TYPES) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'FLOAT32', '') },
  { weight: 1, arbitrary: hostileValue },
)
const dims = fc.oneof(
  { weight: 4, arbitrary: fc.constant(WAKE_DIMS) },
  { weight: 2, arbitrary: fc.array(fc.nat(30), { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.array(hostileNumber, { maxLength: 17 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom([0], [], [2 ** 31, 2 ** 31], [1e308], [2 ** 53, 0], [-1, 25, 96], new Array(17).fill(1)),
  },
)
const value = fc.oneof(
  fc.double(),
  hostileNumber,
  fc.boolean(),
  fc.constantFrom('1', '-1', '9223372036854775808', 'x', '1e3', '0x10'),
)
const data = fc.oneof(
  { weight: 3, arbitrary: fc.array(value, { minLength: COUNT, maxLength: COUNT }) },
  { weight: 1, arbitrary: fc.array(value, { maxLength: 8 }) },
  { weight: 1, arbitrary: hostileValue },
)
const b64 = fc.oneof(
  fc.uint8Array({ minLength: COUNT * 4, maxLength: COUNT * 4 }).map((b) => Buffer.from(b).toString('base64')),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64')),
  hostileString,
  fc.constantFrom('====', '!!!!', 'AA=A', '\u0000'),
)
const tensor = fc.record({ type: tensorType, dims, data, b64 }, { requiredKeys: ['type', 'dims'] })
const inputName = fc.oneof(
  { weight: 6, arbitrary: fc.constant(WAKE_INPUT) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', '') },
  { weight: 1, arbitrary: hostileString },
)
/** A valid request (numbers at the edges: ±1e999 parse to ±Infinity, -0, 1e300), then 0-2 fields made hostile. */
const number = fc.oneof(
  { weight: 6, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.constantFrom(...['1e999', '-1e999', '-0', '1e300', '5e-324'].map((t) => new Raw(t))) },
)
const nearValid = fc
  .tuple(
    fc.oneof(
      fc
        .array(number, { minLength: COUNT, maxLength: COUNT })
        .map((d) => ({ type: 'float32', dims: WAKE_DIMS, data: d })),
      fc
        .uint8Array({ minLength: COUNT * 4, maxLength: COUNT * 4 })
        .map((b) => ({ type: 'float32', dims: WAKE_DIMS, b64: Buffer.from(b).toString('base64') })),
    ),
    fc.boolean(),
    fc.array(fc.tuple(fc.nat(), fc.option(fc.oneof(hostileValue, hostileNumber), { nil: undefined })), {
      maxLength: 2,
    }),
  )
  .map(([t, binary, muts]) => {
    // Mutate the header fields, rarely the 2,400 data values (picks beyond them land on the top levels).
    const body = { inputs: { [WAKE_INPUT]: { ...t, data: undefined } }, binary }
    const mutated = muts.reduce<unknown>((m, [pick, v]) => mutate(m, pick, v), body) as typeof body
    const target = mutated.inputs?.[WAKE_INPUT]
    if (target && typeof target === 'object' && 'data' in t && !('data' in target && target.data !== undefined))
      (target as Record<string, unknown>).data = t.data
    return Buffer.from(jsonText(mutated))
  })
const jsonBody = fc.oneof(
  { weight: 6, arbitrary: nearValid },
  {
    weight: 6,
    arbitrary: fc
      .record(
        {
          inputs: fc.dictionary(inputName, tensor, { minKeys: 1, maxKeys: 3 }),
          binary: fc.oneof(fc.boolean(), hostileValue),
        },
        { requiredKeys: ['inputs'] },
      )
      .map((b) => Buffer.from(jsonText(b))),
  },
  { weight: 1, arbitrary: fc.record({ inputs: hostileValue }).map((b) => Buffer.from(jsonText(b))) },
  { weight: 2, arbitrary: junkPayload },
)

/** A binary request header entry with hostile fields; data bytes appended as the case says. */
const binaryBody = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.dictionary(
          inputName,
          fc.record(
            {
              type: tensorType,
              dims,
              offset: fc.oneof(fc.constant(0), hostileNumber),
              length: fc.oneof(fc.constant(COUNT * 4), hostileNumber),
            },
            { requiredKeys: ['type', 'dims'] },
          ),
          { maxKeys: 2 },
        ),
        fc.oneof(fc.constant(COUNT * 4), fc.nat(COUNT * 8)),
        fc.option(fc.nat(2 ** 32 - 1), { freq: 8 }),
      )
      .map(([inputs, dataBytes, headerLen]) => {
        const header = Buffer.from(jsonText({ inputs }))
        const len = Buffer.alloc(4)
        len.writeUInt32LE(headerLen ?? header.length, 0)
        return Buffer.concat([len, header, Buffer.alloc(dataBytes, 0x3f)])
      }),
  },
  { weight: 3, arbitrary: mutatedBytes(encodeBinaryRequest({ [WAKE_INPUT]: wakeInput() })) },
  { weight: 1, arbitrary: junkPayload },
)

describe('fuzz: the agent local inference API', () => {
  let host: ModelHost
  let server: Server
  let base: string
  const statuses: Record<string, number> = {}

  beforeAll(async () => {
    const key = privateKeyFromPem(generateSigningKeys().privateKeyPem)
    const b = await buildWake(MODELS.hello, { key, version: '1.2' })
    host = new ModelHost({ threads: 1, executionProviders: ['cpu'] })
    host.activate(b.manifest, 'a', await host.open(MODELS.hello))
    server = createApiServer({ host, maxBodyBytes: MAX_BODY, deviceId: 'dev-1' })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    console.log('[fuzz] infer statuses', JSON.stringify(statuses))
    await new Promise<void>((resolve) => server?.close(() => resolve()))
    await host?.close()
  })

  async function expectCoded(model: string, body: Buffer, contentType: string): Promise<void> {
    const res = await deadline(
      fetch(`${base}/v1/models/${model}/infer`, { method: 'POST', body, headers: { 'content-type': contentType } }),
      10_000,
      `infer ${model}`,
    )
    const text = Buffer.from(await res.arrayBuffer())
    statuses[res.status] = (statuses[res.status] ?? 0) + 1
    if (res.status === 200) return
    const what = `${res.status} ${text.subarray(0, 300).toString()}`
    expect(res.status, what).toBeGreaterThanOrEqual(400)
    expect(res.status, what).toBeLessThan(500)
    const code = (JSON.parse(text.toString()) as { error?: { code?: unknown } }).error?.code
    expect(isErrorCode(code), what).toBe(true)
  }

  const model = fc.oneof(
    { weight: 8, arbitrary: fc.constant('wake') },
    { weight: 1, arbitrary: fc.constantFrom('namaste', '__proto__', 'constructor', 'toString') },
  )

  it('JSON requests: a 200 or a coded 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(model, jsonBody, (m, body) => expectCoded(m, body, 'application/json')),
      fuzzParams('infer json', 400),
    )
  })

  it('binary requests: a 200 or a coded 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(model, binaryBody, (m, body) => expectCoded(m, body, BINARY_CONTENT_TYPE)),
      fuzzParams('infer binary', 400),
    )
  })

  // Cases the properties found, kept as plain regressions.
  const deepArray = '['.repeat(20_000) + ']'.repeat(20_000)
  it.each([
    [
      'a type nested 20,000 deep (was a stack overflow in String(type), 500)',
      `{"inputs":{"${WAKE_INPUT}":{"type":${deepArray},"dims":[1],"data":[1]}}}`,
    ],
    [
      '"__proto__" as the input name with a deep type',
      `{"inputs":{"__proto__":{"type":${deepArray},"dims":[1],"data":[1]}}}`,
    ],
    [
      '"constructor" as the type (was looked up on the prototype chain)',
      `{"inputs":{"${WAKE_INPUT}":{"type":"constructor","dims":[],"data":[1]}}}`,
    ],
  ])('JSON: %s → 400 EF_ERR_INFER_BAD_TENSOR', async (_what, body) => {
    const res = await fetch(`${base}/v1/models/wake/infer`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    })
    expect({ status: res.status, code: ((await res.json()) as { error?: { code?: string } }).error?.code }).toEqual({
      status: 400,
      code: 'EF_ERR_INFER_BAD_TENSOR',
    })
  })

  it('binary: a header type nested 20,000 deep → 400 EF_ERR_INFER_BAD_TENSOR (was a stack overflow in JSON.stringify, 500)', async () => {
    const header = Buffer.from(`{"inputs":{"x":{"type":${deepArray}}}}`)
    const len = Buffer.alloc(4)
    len.writeUInt32LE(header.length, 0)
    const res = await fetch(`${base}/v1/models/wake/infer`, {
      method: 'POST',
      body: Buffer.concat([len, header]),
      headers: { 'content-type': BINARY_CONTENT_TYPE },
    })
    expect({ status: res.status, code: ((await res.json()) as { error?: { code?: string } }).error?.code }).toEqual({
      status: 400,
      code: 'EF_ERR_INFER_BAD_TENSOR',
    })
  })

  it('still answers a valid request afterwards', async () => {
    const res = await fetch(`${base}/v1/models/wake/infer`, {
      method: 'POST',
      body: encodeBinaryRequest({ [WAKE_INPUT]: wakeInput() }),
      headers: { 'content-type': BINARY_CONTENT_TYPE },
    })
    expect(res.status).toBe(200)
    expect(statuses[200] ?? 0).toBeGreaterThan(10) // the generators reached ORT, not only the validators
  })
})
