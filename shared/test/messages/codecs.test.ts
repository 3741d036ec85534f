// Every message codec: a valid instance decodes, and each failure class gets
// its own stable code [EF-2.2]: not JSON → EF_ERR_MSG_JSON, wrong shape →
// EF_ERR_MSG_SCHEMA, more bytes than the per-type limit → EF_ERR_MSG_TOO_LARGE.
import { describe, expect, it } from 'vitest'
import {
  EdgeFleetError,
  LATENCY_BUCKETS_MS,
  cmdCodec,
  eventCodec,
  fetchCodec,
  manifestCodec,
  profileCodec,
  stateCodec,
  telemetryCodec,
  type MessageCodec,
} from '../../src/index.js'
import type { TSchema } from '@sinclair/typebox'
import * as fx from '../fixtures/messages.js'

const profile = () => ({
  id: 'gateway-rpi4',
  name: 'Raspberry Pi 4',
  arch: 'arm64',
  cores: 4,
  ramMb: 4096,
  storageBudgetMb: 2048,
  accelerators: [],
  executionProviders: ['xnnpack', 'cpu'],
  precisions: ['int8-dynamic', 'fp32'],
  opset: { min: 7, max: 17 },
  latencyBudgetMs: 100,
  network: { metered: false, kind: 'ethernet' },
  maintenanceWindow: { cron: '0 2 * * *', durationMinutes: 60, timezone: 'UTC' },
})

interface Case {
  name: string
  codec: MessageCodec<TSchema>
  maxBytes: number
  valid: () => Record<string, unknown>
  /** One schema violation per entry: a label and a mutation of a valid instance. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mutations reach into nested members of untyped JSON
  invalid: [string, (m: Record<string, any>) => void][]
}

const cases: Case[] = [
  {
    name: 'cmd (deploy)',
    codec: cmdCodec,
    maxBytes: 9 * 1024 * 1024,
    valid: fx.deployCmd,
    invalid: [
      ['unknown type', (m) => (m.type = 'reboot')],
      ['protocol version 2', (m) => (m.v = 2)],
      ['short command id', (m) => (m.id = 'x')],
      ['bad device id', (m) => (m.deviceId = 'a/b')],
      ['missing signature', (m) => delete m.sig],
      ['malformed signature', (m) => (m.sig = 'not-a-signature')],
      ['missing manifestSig', (m) => delete m.manifestSig],
      ['manifest without chunks', (m) => (m.manifest.artifact.chunks = [])],
      ['extra member', (m) => (m.shell = 'rm -rf /')],
      ['rollback not boolean', (m) => (m.rollback = 'yes')],
    ],
  },
  {
    name: 'cmd (rollback)',
    codec: cmdCodec,
    maxBytes: 9 * 1024 * 1024,
    valid: fx.rollbackCmd,
    invalid: [
      ['bad toVersion', (m) => (m.toVersion = 'previous')],
      ['missing model', (m) => delete m.model],
      ['negative issuedAt', (m) => (m.issuedAt = -1)],
    ],
  },
  {
    name: 'manifest',
    codec: manifestCodec,
    maxBytes: 8 * 1024 * 1024,
    valid: fx.manifest,
    invalid: [
      ['unknown precision', (m) => (m.precision = 'int4')],
      ['bad version', (m) => (m.version = '1.2.0-rc1')],
      ['uppercase digest', (m) => (m.artifact.digest = m.artifact.digest.toUpperCase())],
      ['format other than onnx', (m) => (m.artifact.format = 'tflite')],
      ['negative chunk size', (m) => (m.artifact.chunks[0].size = -1)],
      ['tensor with unknown type', (m) => (m.healthCheck.inputs.input.type = 'complex64')],
      ['negative atol', (m) => (m.healthCheck.atol = -1)],
      ['fractional createdAt', (m) => (m.createdAt = 1.5)],
    ],
  },
  {
    name: 'state',
    codec: stateCodec,
    maxBytes: 64 * 1024,
    valid: fx.state,
    invalid: [
      ['online not boolean', (m) => (m.online = 1)],
      ['missing ts', (m) => delete m.ts],
      ['slot c', (m) => (m.models[0].slot = 'c')],
      ['port out of range', (m) => (m.apiPort = 70000)],
      ['network kind', (m) => (m.network = 'wifi')],
    ],
  },
  {
    name: 'events',
    codec: eventCodec,
    maxBytes: 16 * 1024,
    valid: fx.event,
    invalid: [
      ['unknown kind', (m) => (m.kind = 'exploded')],
      ['code outside the catalogue shape', (m) => (m.code = 'E42')],
      ['message too long', (m) => (m.message = 'x'.repeat(2049))],
      ['negative bytes', (m) => (m.bytes = -5)],
    ],
  },
  {
    name: 'telemetry',
    codec: telemetryCodec,
    maxBytes: 256 * 1024,
    valid: fx.telemetry,
    invalid: [
      ['latency histogram one bucket short', (m) => m.models[0].latency.pop()],
      ['latency histogram one bucket long', (m) => m.models[0].latency.push(0)],
      ['short batch id', (m) => (m.batchId = 'b1')],
      ['negative request count', (m) => (m.models[0].requests = -1)],
      ['unknown device metric', (m) => (m.device.gpuTemp = 70)],
    ],
  },
  {
    name: 'fetch',
    codec: fetchCodec,
    maxBytes: 48 * 1024,
    valid: fx.fetchRequest,
    invalid: [
      ['negative index', (m) => (m.chunks = [-1])],
      ['fractional index', (m) => (m.chunks = [1.5])],
      ['too many chunks', (m) => (m.chunks = Array.from({ length: 4097 }, (_, i) => i))],
      ['bad artifact digest', (m) => (m.artifact = 'abc')],
      ['unknown op', (m) => (m.op = 'steal')],
      ['negative ack position', (m) => ((m.op = 'ack'), (m.last = -1))],
    ],
  },
  {
    name: 'profile',
    codec: profileCodec,
    maxBytes: 64 * 1024,
    valid: profile,
    invalid: [
      ['unknown arch', (m) => (m.arch = 'mips')],
      ['missing opset', (m) => delete m.opset],
      ['empty executionProviders', (m) => (m.executionProviders = [])],
    ],
  },
]

function codeOfThrow(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeFleetError)
    return (err as EdgeFleetError).code
  }
  return undefined
}

describe.each(cases)('$name codec', ({ codec, maxBytes, valid, invalid }) => {
  it('declares its size limit', () => {
    expect(codec.maxBytes).toBe(maxBytes)
  })

  it('round-trips a valid message through encode/decode, from string and from bytes', () => {
    const m = valid()
    const wire = codec.encode(m)
    expect(Buffer.isBuffer(wire)).toBe(true)
    expect(codec.decode(wire)).toEqual(m)
    expect(codec.decode(wire.toString('utf8'))).toEqual(m)
    expect(codec.check(m)).toEqual(m)
  })

  it('decodes a Uint8Array view into a larger buffer (byteOffset honoured)', () => {
    const wire = codec.encode(valid())
    const backing = new Uint8Array(wire.length + 20).fill(0x7b) // '{' garbage around the payload
    backing.set(wire, 10)
    expect(codec.decode(backing.subarray(10, 10 + wire.length))).toEqual(valid())
  })

  it.each(['', '{', '{"v":1,}', 'undefined', "{'v':1}", '\u0000'])('EF_ERR_MSG_JSON for %j', (payload) => {
    expect(codeOfThrow(() => codec.decode(payload))).toBe('EF_ERR_MSG_JSON')
  })

  it.each(['null', '42', '"text"', '[]', '{}', 'true'])(
    'EF_ERR_MSG_SCHEMA for JSON that is not this message: %s',
    (payload) => {
      expect(codeOfThrow(() => codec.decode(payload))).toBe('EF_ERR_MSG_SCHEMA')
    },
  )

  it.each(invalid)('EF_ERR_MSG_SCHEMA for %s', (_label, mutate) => {
    const m = valid()
    mutate(m)
    expect(codeOfThrow(() => codec.decode(JSON.stringify(m)))).toBe('EF_ERR_MSG_SCHEMA')
    expect(codeOfThrow(() => codec.check(m))).toBe('EF_ERR_MSG_SCHEMA')
  })

  it('EF_ERR_MSG_SCHEMA names where the message is wrong, also inside a union', () => {
    const m = valid()
    if ('v' in m) {
      m.v = 99
      expect(() => codec.check(m)).toThrow(/: \/v Expected 1$/)
    } else {
      delete m.cores
      expect(() => codec.check(m)).toThrow(/: \/cores Expected required property$/)
    }
  })

  it('accepts exactly maxBytes and refuses maxBytes + 1 with EF_ERR_MSG_TOO_LARGE, before parsing', () => {
    const json = JSON.stringify(valid())
    const atLimit = json + ' '.repeat(maxBytes - Buffer.byteLength(json))
    expect(Buffer.byteLength(atLimit)).toBe(maxBytes)
    expect(codec.decode(atLimit)).toEqual(valid())
    expect(codeOfThrow(() => codec.decode(atLimit + ' '))).toBe('EF_ERR_MSG_TOO_LARGE')
    expect(codeOfThrow(() => codec.decode(Buffer.from(atLimit + ' ')))).toBe('EF_ERR_MSG_TOO_LARGE')
    // size is checked first: an oversized non-JSON payload is TOO_LARGE, not JSON
    expect(codeOfThrow(() => codec.decode('{'.repeat(maxBytes + 1)))).toBe('EF_ERR_MSG_TOO_LARGE')
  })

  it('counts bytes, not characters', () => {
    const chars = Math.floor(maxBytes / 2) + 1 // 2-byte characters: fewer chars than the limit, more bytes
    expect(codeOfThrow(() => codec.decode('é'.repeat(chars)))).toBe('EF_ERR_MSG_TOO_LARGE')
  })
})

describe('cmd union errors', () => {
  it('name the member missing from the variant the command is closest to', () => {
    const m = fx.rollbackCmd()
    delete m.model
    expect(() => cmdCodec.check(m)).toThrow(/\/model Expected required property/)
  })
})

describe('telemetry histogram shape [EF-2.6.2]', () => {
  it('has one count per bucket bound plus one overflow bucket, bounds strictly ascending', () => {
    expect(fx.telemetry().models[0].latency).toHaveLength(LATENCY_BUCKETS_MS.length + 1)
    for (let i = 1; i < LATENCY_BUCKETS_MS.length; i++)
      expect(LATENCY_BUCKETS_MS[i]).toBeGreaterThan(LATENCY_BUCKETS_MS[i - 1])
  })
})
