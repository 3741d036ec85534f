// Property-based fuzzing of the hub's file readers: ONNX model bytes (our
// protobuf reader and graph walk, then model registration, which loads the
// bytes in ONNX Runtime in the hub's own process) and .npy calibration
// tensors. Inputs are real files mutated (truncated, bit-flipped, overwritten,
// spliced) and random bytes. Properties: a reader returns a value or throws an
// EdgeFleetError with its catalogue code, within a time bound; nothing else
// escapes, and the process survives.
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EdgeFleetError } from '@edgefleet/shared'
import { decodeModel, encodeModel, opsetOf } from '../../src/compiler/onnx/proto.js'
import { walkGraphs } from '../../src/compiler/onnx/graph.js'
import { readNpy, writeNpy } from '../../src/compiler/npy.js'
import { npyOfTensor } from '../../src/feed/npy.js'
import { tensorValue } from '../fixtures/fuzz-messages.js'
import { MODELS, startTestHub, type TestHub } from '../fixtures/hub.js'
import { convModel, ifModel, mlpModel } from '../fixtures/compiler/tiny.js'
import { deadline, fuzzParams, mutatedBytes, withinMs } from '../../../test/support/fuzz.mjs'

/** Runs `fn`; a throw must be an EdgeFleetError with `code`. Returns whether it succeeded. */
function acceptsOrRefuses<T>(code: string, what: string, fn: () => T): T | undefined {
  try {
    return withinMs(2000, what, fn)
  } catch (err) {
    if (!(err instanceof EdgeFleetError)) throw new Error(`${what}: uncoded ${String(err)}`, { cause: err })
    expect(err.code).toBe(code)
    return undefined
  }
}

const hello = readFileSync(MODELS.hello)
const tiny = [mlpModel(), ifModel(), convModel()]

/** Mutations of the tiny models (every byte is structure) and of the head of a real one (graph before weights). */
const onnxBytes = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...tiny).chain((m) => mutatedBytes(m, { maxMutations: 2 })) },
  { weight: 1, arbitrary: fc.constantFrom(...tiny).chain((m) => mutatedBytes(m)) },
  { weight: 2, arbitrary: mutatedBytes(hello, { maxMutations: 2, within: 8192 }) },
  { weight: 1, arbitrary: mutatedBytes(hello) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }) },
)

describe('fuzz: ONNX reader', () => {
  it('decodeModel: a model or EF_ERR_MODEL_INVALID; a decoded model walks and re-encodes', () => {
    let decoded = 0
    fc.assert(
      fc.property(onnxBytes, (bytes) => {
        const m = acceptsOrRefuses('EF_ERR_MODEL_INVALID', 'decodeModel', () => decodeModel(bytes))
        if (!m) return
        decoded++
        withinMs(2000, 'walk and re-encode', () => {
          opsetOf(m)
          walkGraphs(m, () => {})
          encodeModel(m)
        })
      }),
      fuzzParams('onnx decode', 1000),
    )
    expect(decoded).toBeGreaterThan(30) // mutations that keep a parseable model reach the walk
  })

  describe('registration (ONNX Runtime loads the bytes in the hub process)', () => {
    let t: TestHub
    beforeAll(async () => {
      t = await startTestHub() // no device provisioned: registration inspects the model and builds nothing
    })
    afterAll(async () => {
      await t?.close()
    })

    it('registers the model or refuses it with EF_ERR_MODEL_INVALID, and the hub keeps answering', async () => {
      let n = 0
      const outcomes: Record<string, number> = {}
      await fc.assert(
        fc.asyncProperty(onnxBytes, async (bytes) => {
          const version = `1.0.${n++}`
          try {
            await deadline(t.hub.registry.add({ name: 'fz', version, bytes }), 20_000, 'registry.add')
            outcomes.ok = (outcomes.ok ?? 0) + 1
          } catch (err) {
            if (!(err instanceof EdgeFleetError)) throw new Error(`uncoded: ${String(err)}`, { cause: err })
            outcomes[err.code] = (outcomes[err.code] ?? 0) + 1
            expect(['EF_ERR_MODEL_INVALID', 'EF_ERR_VERSION_EXISTS']).toContain(err.code)
          }
        }),
        fuzzParams('onnx register', 200),
      )
      console.log('[fuzz] onnx registration outcomes', JSON.stringify(outcomes))
      expect((await t.hub.api.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    })
  })
})

describe('fuzz: .npy reader', () => {
  const samples = [
    writeNpy({ type: 'float32', dims: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }),
    writeNpy({ type: 'int64', dims: [4], data: BigInt64Array.from([1n, -2n, 3n, 4n]) }),
    writeNpy({ type: 'uint8', dims: [0], data: new Uint8Array(0) }),
    writeNpy({ type: 'float64', dims: [], data: Float64Array.from([Math.PI]) }),
  ]
  /** A syntactically plausible header with hostile descr, shape and version fields. */
  const header = fc
    .tuple(
      fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 2, 3) }, fc.constantFrom(0, 4, 255)),
      fc.oneof(
        fc.constantFrom('<f4', '>f8', '|u1', '<i8', '>u8', '<f2', '|b1', '=i4', '<c8', '<U10', '|O', '<f16', '<f4f4'),
        fc.string({ maxLength: 8 }),
      ),
      fc.oneof({ weight: 4, arbitrary: fc.constant('False') }, fc.constantFrom('True', 'false', '')),
      fc.array(
        fc.oneof(
          fc.nat(8).map(String),
          fc.constantFrom('0', '-1', '1e3', '1e308', '0x10', 'inf', 'nan', '99999999999', '1.5', '', ' ', 'L'),
        ),
        { maxLength: 6 },
      ),
      fc.nat(512),
    )
    .map(([major, descr, fortran, shape, randomBytes]) => {
      // Half the cases carry exactly the bytes the header asks for (when it asks for a computable, small amount).
      const count = shape.reduce((a, d) => a * Number(d), 1)
      const exact = count * Number(/\d+$/.exec(descr)?.[0] ?? NaN)
      const dataBytes =
        randomBytes % 2 === 0 && Number.isSafeInteger(exact) && exact >= 0 && exact < 1e6 ? exact : randomBytes
      const text = Buffer.from(`{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': (${shape.join(', ')}), }\n`)
      const head = Buffer.alloc(major === 1 ? 10 : 12)
      head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0])
      if (major === 1) head.writeUInt16LE(text.length, 8)
      else head.writeUInt32LE(text.length, 8)
      return Buffer.concat([head, text, Buffer.alloc(dataBytes, 0x41)])
    })
  const npyBytes = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...samples).chain((s) => mutatedBytes(s)) },
    { weight: 3, arbitrary: header },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) },
  )

  it('readNpy: shape (0, 1e308) → EF_ERR_CALIBRATION_INVALID (was accepted with a dim of 1e308: 0 elements passed the size check)', () => {
    const text = Buffer.from("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1e308), }\n")
    const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, text.length, 0])
    expect(() => readNpy(Buffer.concat([head, text]))).toThrow(
      expect.objectContaining({ code: 'EF_ERR_CALIBRATION_INVALID' }),
    )
  })

  it('readNpy: a tensor whose data matches its dims, or EF_ERR_CALIBRATION_INVALID', () => {
    let read = 0
    fc.assert(
      fc.property(npyBytes, (bytes) => {
        const t = acceptsOrRefuses('EF_ERR_CALIBRATION_INVALID', 'readNpy', () => readNpy(bytes))
        if (!t) return
        read++
        expect(t.data.length).toBe(t.dims.reduce((a, b) => a * b, 1))
        expect(t.dims.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true)
      }),
      fuzzParams('npy read', 1000),
    )
    expect(read).toBeGreaterThan(20)
  })

  it('the feed writer (npyOfTensor) and the reader agree: a sample tensor the hub serves reads back with its dims, or is refused with EF_ERR_INFER_BAD_TENSOR', () => {
    let written = 0
    fc.assert(
      fc.property(tensorValue, (t) => {
        const bytes = acceptsOrRefuses('EF_ERR_INFER_BAD_TENSOR', 'npyOfTensor', () => npyOfTensor('x', t as never))
        if (!bytes) return
        written++
        const back = readNpy(bytes)
        expect(back.dims).toEqual(t.dims)
      }),
      fuzzParams('npy write-read', 800),
    )
    expect(written).toBeGreaterThan(20)
  })
})
