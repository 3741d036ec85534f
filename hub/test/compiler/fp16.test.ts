// fp16 compute [EF-5.9]: the rewritten graph is typed right for ONNX Runtime
// (it loads and runs in real sessions), its edges stay fp32, the keep-float
// list and shape math stay fp32, and the results stay within the build's
// tolerance of the float model — on a tiny model that holds every awkward case
// and on the real models (OCR det/rec/cls, wake-word heads, Silero VAD).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodeModel, encodeModel, toNumber, DataType, type ModelProto } from '../../src/compiler/onnx/proto.js'
import { fp16ComputePass } from '../../src/compiler/passes/fp16-compute.js'
import { inferGraphTypes } from '../../src/compiler/tensor-types.js'
import { fp16Compute } from '../../src/compiler/build.js'
import { compile, openSession, run, synthesizeInputs, sessionSignature } from '../../src/compiler/index.js'
import { compareOutputs } from '../../src/compiler/measure.js'
import { fp16MixModel, ifModel } from '../fixtures/compiler/tiny.js'
import { shipped, speechLikeAudio, testProfile } from '../fixtures/compiler/models.js'
import { runCli } from '../fixtures/cli.js'

const nodeByOutput = (m: ModelProto, out: string) => m.graph?.node.find((n) => n.output.includes(out))

async function outputsOf(bytes: Uint8Array, inputs?: Parameters<typeof run>[1]) {
  const s = await openSession(bytes)
  try {
    const x = inputs ?? synthesizeInputs(sessionSignature(s).inputs, { seed: 3 })
    return { x, y: await run(s, x), signature: sessionSignature(s) }
  } finally {
    await s.release()
  }
}

describe('fp16 compute pass (tiny model with every awkward case)', () => {
  it('computes in fp16 between fp32 edges; keep-float ops, shape math and out-of-range constants handled', async () => {
    const src = fp16MixModel()
    const model = decodeModel(src)
    const result = fp16ComputePass(model, await inferGraphTypes(src))
    const graph = model.graph!
    // The I/O contract is the float model's.
    for (const v of [...graph.input, ...graph.output]) expect(v.type?.tensor_type?.elem_type).toBe(DataType.FLOAT)
    expect(result.plan.byOp.Conv).toEqual({ 'fp16 compute': 1 })
    expect(result.plan.byOp.Resize).toEqual({ 'fp16 compute': 1 })
    expect(result.plan.byOp.Softmax).toEqual({ 'fp32 (keep-float)': 1 })
    // Shape → Cast → Mul → Cast is shape math: it stays fp32 and its Casts keep their targets.
    expect(result.plan.byOp.Mul).toEqual({ 'fp32 (keep-float)': 1 })
    expect(toNumber(nodeByOutput(model, 'sf')?.attribute[0].i)).toBe(DataType.FLOAT)
    // Attributes follow their node: the float→float Cast and ConstantOfShape's value become fp16.
    expect(toNumber(nodeByOutput(model, 'a2')?.attribute[0].i)).toBe(DataType.FLOAT16)
    expect(nodeByOutput(model, 'half0')?.attribute[0].t?.data_type).toBe(DataType.FLOAT16)
    expect(graph.value_info.find((v) => v.name === 'r')?.type?.tensor_type?.elem_type).toBe(DataType.FLOAT16)
    // The conv weight is an fp16 initializer; the -1e9 mask entries were clipped to -65504, not turned into -inf.
    expect(graph.initializer.filter((t) => t.data_type === DataType.FLOAT16).length).toBeGreaterThanOrEqual(2)
    expect(result.clipped).toBe(52)
    // y2 is computed in fp16 and cast back at the edge under its own name.
    expect(nodeByOutput(model, 'y2')?.op_type).toBe('Cast')

    const ref = await outputsOf(src)
    const got = await outputsOf(encodeModel(model), ref.x)
    expect(got.signature.outputs.map((o) => o.type)).toEqual(['float32', 'float32'])
    const acc = compareOutputs([ref.y], [got.y])
    expect(acc.cosine).toBeGreaterThan(0.999)
    expect(acc.maxAbsError).toBeLessThan(0.01)
  })

  it('which profiles compute in fp16: GPU/NPU providers by default, the profile can state it', () => {
    expect(fp16Compute(testProfile({ executionProviders: ['cpu'] }))).toBe(false)
    expect(fp16Compute(testProfile({ executionProviders: ['cuda', 'cpu'] }))).toBe(true)
    expect(fp16Compute(testProfile({ executionProviders: ['cuda', 'cpu'], fp16Compute: false }))).toBe(false)
    expect(fp16Compute(testProfile({ executionProviders: ['xnnpack', 'cpu'], fp16Compute: true }))).toBe(true)
  })
})

// Budgets as models.test.ts gives these models (OCR on synthetic text amplifies small errors).
const cases: { name: keyof typeof shipped; minCosine: number; halfOp: string }[] = [
  { name: 'ocr-rec', minCosine: 0.99, halfOp: 'Conv' },
  { name: 'ocr-det', minCosine: 0.99, halfOp: 'Conv' },
  { name: 'ocr-cls', minCosine: 0.99, halfOp: 'Conv' },
  { name: 'wake-hello', minCosine: 0.99, halfOp: 'Gemm' },
]

describe('fp16 compute builds of real models', () => {
  const profile = testProfile({ executionProviders: ['cuda', 'cpu'] })
  const build = (name: keyof typeof shipped, minCosine: number) => {
    const entry = shipped[name]
    return compile(
      new Uint8Array(readFileSync(entry.file)),
      { ...profile, accuracyBudget: { minCosine } },
      {
        precision: 'fp16',
        inputShapes: entry.inputShapes,
        inputValues: entry.inputValues,
        validationSamples: 2,
        timing: false,
      },
    )
  }

  it.each(cases)('$name: fp16 kernels, fp32 I/O, within the accuracy budget', async ({ name, minCosine, halfOp }) => {
    const built = await build(name, minCosine)
    expect(built.report.verdict).toBe('pass')
    expect(built.report.cosine).toBeGreaterThanOrEqual(minCosine)
    const plan = built.report.plan as Record<string, Record<string, number>>
    expect(plan[halfOp]['fp16 compute']).toBeGreaterThan(0)
    expect((built.report.notes as string[]).join('\n')).toMatch(/fp16 compute: \d+ nodes in fp16/)
    const s = await openSession(built.bytes)
    const sig = sessionSignature(s)
    await s.release()
    expect([...sig.inputs, ...sig.outputs].filter((t) => t.type.startsWith('float')).map((t) => t.type)).not.toContain(
      'float16',
    )
    // The file holds fp16 values: about half the float model.
    expect(built.report.sizeBytes).toBeLessThan(0.6 * readFileSync(shipped[name].file).byteLength)
  })
})

describe('fp16 compute inside If/Loop/Scan bodies', () => {
  it('tiny If model: both branches compute in fp16 (an outer Constant weight gets an fp16 copy in its body), I/O fp32', async () => {
    const src = ifModel()
    const model = decodeModel(src)
    const result = fp16ComputePass(model, await inferGraphTypes(src))
    expect(result.plan.byOp.Conv).toEqual({ 'fp16 compute': 2 })
    expect(result.halfInSubgraphs).toBe(2)
    const [thenG, elseG] = model.graph!.node.find((n) => n.op_type === 'If')!.attribute.map((a) => a.g!)
    for (const body of [thenG, elseG]) {
      // The body's output keeps its fp32 contract with the If: a Cast writes it.
      expect(body.node.find((n) => n.output.includes(body.output[0].name!))?.op_type).toBe('Cast')
      expect(body.initializer.some((t) => t.data_type === DataType.FLOAT16)).toBe(true)
    }
    for (const flag of [true, false]) {
      const x = synthesizeInputs([{ name: 'x', type: 'float32', dims: [1, 4, 8, 8] }], { seed: 2 })
      const feeds = { ...x, flag: { type: 'bool' as const, dims: [], data: Uint8Array.of(flag ? 1 : 0) } }
      const ref = await outputsOf(src, feeds)
      const got = await outputsOf(encodeModel(model), feeds)
      expect(compareOutputs([ref.y], [got.y]).cosine).toBeGreaterThan(0.999)
    }
  })

  it('silero-vad via `edgefleet compile --shape …`: its If bodies compute in fp16 (LSTM kept fp32) and agree with fp32 on speech-like audio', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-vad-fp16-'))
    try {
      const profile = join(dir, 'gpu.json')
      writeFileSync(
        profile,
        JSON.stringify(testProfile({ id: 'gpu', executionProviders: ['cuda', 'cpu'], precisions: ['fp16'] })),
      )
      const out = join(dir, 'vad.onnx')
      const report = join(dir, 'vad.json')
      const cli = await runCli([
        'compile',
        shipped['silero-vad'].file,
        '--profile',
        profile,
        '--out',
        out,
        '--report',
        report,
        '--shape',
        'input=1,512',
        '--shape',
        'h=2,1,64',
        '--shape',
        'c=2,1,64',
        '--value',
        'sr=16000',
        '--json',
      ])
      expect(cli.code, cli.err).toBe(0)
      const json = JSON.parse(readFileSync(report, 'utf8')) as {
        precision: string
        plan: Record<string, Record<string, number>>
        notes: string[]
      }
      expect(json.precision).toBe('fp16')
      expect(json.plan.Conv['fp16 compute']).toBeGreaterThan(0)
      expect(json.plan.LSTM).toEqual({ 'fp32 (keep-float)': expect.any(Number) as number })
      expect(json.notes.join('\n')).toMatch(/fp16 compute: \d+ nodes in fp16 \(\d+ inside If\/Loop\/Scan bodies/)
      const agreement = await vadAgreement(
        new Uint8Array(readFileSync(shipped['silero-vad'].file)),
        new Uint8Array(readFileSync(out)),
      )
      expect(agreement.maxAbsDiff).toBeLessThan(0.05)
      expect(agreement.decisionsAgree).toBeGreaterThanOrEqual(0.99)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})

/** Streams 6 s of speech-like audio through both builds (512-sample chunks, LSTM state carried): speech probabilities compared. */
async function vadAgreement(float: Uint8Array, half: Uint8Array) {
  const audio = speechLikeAudio(6, 11)
  const sessions = [await openSession(float), await openSession(half)]
  const states: { h: Float32Array; c: Float32Array }[] = sessions.map(() => ({
    h: new Float32Array(128),
    c: new Float32Array(128),
  }))
  let maxAbsDiff = 0
  let agree = 0
  let chunks = 0
  try {
    for (let at = 0; at + 512 <= audio.length; at += 512, chunks++) {
      const probs: number[] = []
      for (const [k, s] of sessions.entries()) {
        const y = await run(s, {
          input: { type: 'float32', dims: [1, 512], data: audio.slice(at, at + 512) },
          sr: { type: 'int64', dims: [1], data: BigInt64Array.of(16000n) },
          h: { type: 'float32', dims: [2, 1, 64], data: states[k].h },
          c: { type: 'float32', dims: [2, 1, 64], data: states[k].c },
        })
        states[k] = { h: y.hn.data as Float32Array, c: y.cn.data as Float32Array }
        probs.push((y.output.data as Float32Array)[0])
      }
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(probs[0] - probs[1]))
      if (probs[0] > 0.5 === probs[1] > 0.5) agree++
    }
  } finally {
    for (const s of sessions) await s.release()
  }
  return { maxAbsDiff, decisionsAgree: agree / chunks, chunks }
}
