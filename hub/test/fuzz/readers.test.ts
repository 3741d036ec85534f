// Property-based fuzzing of the hub's file readers: ONNX model bytes (our
// protobuf reader and graph walk, then model registration, which loads the
// bytes in ONNX Runtime in the hub's own process) and dataset tar archives
// (hub/src/feed/tar.ts). The .npy codec is fuzzed in shared/test/fuzz. Inputs are real files mutated (truncated, bit-flipped, overwritten,
// spliced) and random bytes. Properties: a reader returns a value or throws an
// EdgeFleetError with its catalogue code, within a time bound; nothing else
// escapes, and the process survives.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EdgeFleetError } from '@edgefleet/shared'
import { decodeModel, encodeModel, opsetOf } from '../../src/compiler/onnx/proto.js'
import { walkGraphs } from '../../src/compiler/onnx/graph.js'
import { readTar, TarWriter } from '../../src/feed/tar.js'
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
          walkGraphs(m, () => undefined) // the walk itself is what is timed
          encodeModel(m)
        })
      }),
      fuzzParams('onnx decode', 1000),
    )
    expect(decoded).toBeGreaterThan(30) // mutations that keep a parseable model reach the walk
  })

  describe('registration (ONNX Runtime loads the bytes in the hub process)', () => {
    let testHub: TestHub
    beforeAll(async () => {
      testHub = await startTestHub() // no device provisioned: registration inspects the model and builds nothing
    })
    afterAll(async () => {
      await testHub?.close()
    })

    it('registers the model or refuses it with EF_ERR_MODEL_INVALID, and the hub keeps answering', async () => {
      let n = 0
      const outcomes: Record<string, number> = {}
      await fc.assert(
        fc.asyncProperty(onnxBytes, async (bytes) => {
          const version = `1.0.${n++}`
          try {
            await deadline(testHub.hub.registry.add({ name: 'fz', version, bytes }), 20_000, 'registry.add')
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
      expect((await testHub.hub.api.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    })
  })
})

describe('fuzz: tar reader', () => {
  let dir: string
  let archive: Buffer
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ef-fuzz-tar-'))
    const w = new TarWriter(join(dir, 'base.tar'), Date.UTC(2026, 0, 1))
    await w.add('index.jsonl', Buffer.from('{"cursor":1}\n{"cursor":2}\n'))
    await w.add(`samples/1/inputs/${'x'.repeat(120)}.npy`, Buffer.alloc(700, 7)) // a long name (ustar prefix)
    await w.add('samples/2/outputs/y.npy', Buffer.alloc(0))
    await w.close()
    archive = readFileSync(join(dir, 'base.tar'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('readTar: the files, or EF_ERR_ARCHIVE_INVALID; never a hang or another error', async () => {
    const outcomes: Record<string, number> = {}
    // Length-preserving mutations mostly (a tar is whole 512-byte blocks), in the headers as in the data.
    const tarBytes = fc.oneof(
      { weight: 4, arbitrary: mutatedBytes(archive, { maxMutations: 3 }) },
      {
        weight: 2,
        arbitrary: mutatedBytes(archive.subarray(0, 1024), { maxMutations: 3 }).map((b) =>
          Buffer.concat([b, archive.subarray(b.length)]),
        ),
      },
      { weight: 1, arbitrary: fc.nat(archive.length / 512).map((n) => archive.subarray(0, n * 512)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 4 * 512 }) },
    )
    let n = 0
    await fc.assert(
      fc.asyncProperty(tarBytes, async (bytes) => {
        const path = join(dir, `case-${n++}.tar`)
        writeFileSync(path, bytes)
        try {
          let files = 0
          await deadline(
            readTar(
              path,
              () => {
                files++
              },
              { maxEntryBytes: 1 << 20, maxEntries: 100 },
            ),
            5000,
            'readTar',
          )
          outcomes[`ok:${files}`] = (outcomes[`ok:${files}`] ?? 0) + 1
        } catch (err) {
          if (!(err instanceof EdgeFleetError)) throw new Error(`uncoded: ${String(err)}`, { cause: err })
          expect(err.code).toBe('EF_ERR_ARCHIVE_INVALID')
          outcomes[err.code] = (outcomes[err.code] ?? 0) + 1
        } finally {
          rmSync(path, { force: true })
        }
      }),
      fuzzParams('tar read', 500),
    )
    console.log('[fuzz] tar outcomes', JSON.stringify(outcomes))
    expect(outcomes.EF_ERR_ARCHIVE_INVALID).toBeGreaterThan(0)
  })
})
