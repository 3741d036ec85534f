// Every npm-shipped model × every precision: the build loads in
// onnxruntime-node, runs, and stays inside the accuracy budget against the
// float model (the compiler proves this itself; the test re-checks the report
// and re-runs the build independently).
import { readFileSync, rmSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import type { Precision } from '@edgefleet/shared'
import {
  compile,
  openSession,
  run,
  synthesizeInputs,
  sessionSignature,
  defaultAccuracyBudget,
} from '../../src/compiler/index.js'
import { shipped, testProfile, textCalibrationDir } from '../fixtures/compiler/models.js'

const precisions: Precision[] = ['fp32', 'fp16', 'int8-dynamic', 'int8-weight', 'int8-static']

// The OCR models amplify small errors on our synthetic text images (random strokes keep many
// probabilities near 0.5), so their profiles carry a looser budget, as a real OCR profile would
// after checking on its own data. Det's full static QDQ build misses it; the planner then keeps
// the stem in float (STATIC_KEEP_FLOAT_STEPS) and passes.
const budgets: Record<string, { minCosine: number; maxTop1Disagreement: number }> = {
  'ocr-det': { minCosine: 0.95, maxTop1Disagreement: 0.05 },
  'ocr-rec': { minCosine: 0.95, maxTop1Disagreement: 0.15 },
}
// Silero VAD's Conv/MatMul sit inside If branches: the main graph has nothing a static build could
// calibrate, and an "int8-static" label on a weight-only build would be a lie, so it is refused.
const expectRefused = new Map<string, { code: string; message: RegExp }>([
  ['silero-vad/int8-static', { code: 'EF_ERR_BUILD_FAILED', message: /nothing for int8-static to quantize/ }],
])
const dirs: string[] = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

describe.each(Object.entries(shipped))('%s', (name, entry) => {
  const model = new Uint8Array(readFileSync(entry.file))
  const calibrationDir = entry.images
    ? textCalibrationDir(entry.images.input, entry.images.dims, 10, 7, entry.images.norm)
    : undefined
  if (calibrationDir) dirs.push(calibrationDir)

  it.each(precisions)('%s build loads, runs and is within budget', async (precision) => {
    const budget = budgets[name] ?? defaultAccuracyBudget
    const profile = testProfile({ accuracyBudget: budget })
    const opts = {
      precision,
      inputShapes: entry.inputShapes,
      inputValues: entry.inputValues,
      calibrationDir,
      calibrationSamples: 4,
      validationSamples: 3,
      timing: false as const,
    }
    const refused = expectRefused.get(`${name}/${precision}`)
    if (refused) {
      await expect(compile(model, profile, opts)).rejects.toMatchObject({
        code: refused.code,
        message: expect.stringMatching(refused.message),
      })
      return
    }
    const built = await compile(model, profile, opts)
    expect(built.precision).toBe(precision)
    expect(built.report.verdict).toBe('pass')
    expect(built.report.cosine).toBeGreaterThanOrEqual(budget.minCosine)
    if (built.report.top1Agreement !== undefined)
      expect(1 - (built.report.top1Agreement as number)).toBeLessThanOrEqual(budget.maxTop1Disagreement)
    expect(() => JSON.stringify(built.report)).not.toThrow()
    if (precision.startsWith('int8')) expect(built.report.sizeBytes).toBeLessThan(0.5 * model.byteLength)
    if (precision === 'fp16') expect(built.report.sizeBytes).toBeLessThan(0.6 * model.byteLength)
    // The issue's size target (int8 ≤ 0.27 of fp32) on the conv and MatMul/Gemm models, met by the
    // size-minimising candidate (int8 weights + compact storage). VAD's weights sit in If branches
    // (no name shortening there) and its LSTM biases stay fp32: 0.29.
    if (precision === 'int8-weight' && name !== 'silero-vad') expect(built.report.sizeRatio).toBeLessThanOrEqual(0.27)
    // The static QDQ builds of the two big conv models too (no zero-point tensors, compact storage).
    if ((precision === 'int8-static' || precision === 'int8-dynamic') && (name === 'ocr-det' || name === 'ocr-rec'))
      expect(built.report.sizeRatio).toBeLessThanOrEqual(0.27)
    // A static build is static: it calibrated activations and put every weighted op it can in QDQ
    // form, Gemm and MatMul too (the wake-word heads are Gemm; the issue found 0 activations there).
    if (precision === 'int8-static') {
      const calibrated = (built.report.notes as string[]).find((n) => n.startsWith('calibrated '))
      expect(Number(/calibrated (\d+)/.exec(calibrated ?? '')?.[1])).toBeGreaterThan(0)
      const plan = built.report.plan as Record<string, Record<string, number>>
      for (const op of ['Gemm', 'MatMul']) expect(plan[op]?.['int8-dynamic'] ?? 0, op).toBe(0)
      if (name.startsWith('wake-')) {
        // Their three Gemm run as QLinearMatMul (ORT did not fuse QDQ Gemm into QGemm): Gemm → MatMul + Add first.
        expect(built.report.notes).toContainEqual(expect.stringMatching(/^3 Gemm → MatMul \+ Add/))
        expect(plan.MatMul?.['int8-static']).toBe(3)
      }
    }
    // Independently: the shipped bytes load and run with the device's default options.
    const s = await openSession(built.bytes, { threads: 1 })
    try {
      const out = await run(
        s,
        synthesizeInputs(sessionSignature(s).inputs, { shapes: entry.inputShapes, values: entry.inputValues }),
      )
      expect(Object.keys(out).sort()).toEqual(built.outputs.map((o) => o.name).sort())
    } finally {
      await s.release()
    }
    console.log(
      `${name} ${precision}: size ${(built.report.sizeRatio as number).toFixed(3)} cosine ${built.report.cosine.toFixed(4)}${built.report.top1Agreement !== undefined ? ` top1 ${(built.report.top1Agreement as number).toFixed(3)}` : ''}`,
    )
  })
})

describe('planner selection', () => {
  // int8-weight runs DequantizeLinear on every call (1.4× fp32 on a head) but is the smallest build:
  // a profile on a metered network takes it over its preferred fp32 (smaller past the 10 % margin);
  // others keep fp32 unless a build is more than 10 % faster in most paired rounds [EF-5.3].
  it.each([false, true])('metered network %s', async (metered) => {
    const m = shipped['wake-hello']
    const model = new Uint8Array(readFileSync(m.file))
    const profile = testProfile({
      precisions: ['fp32', 'int8-dynamic', 'int8-weight'],
      network: { metered, kind: metered ? 'cellular' : 'ethernet' },
      latencyBudgetMs: 50,
    })
    const built = await compile(model, profile, { timing: { warmup: 5, minRounds: 20, maxRounds: 400, budgetMs: 400 } })
    const decision = built.report.decision as { rule: string; anchor: string }
    expect(decision.anchor).toBe('fp32')
    if (metered) {
      expect(built.precision).toBe('int8-weight')
      expect(decision.rule).toBe('smaller past margin')
      expect(built.report.sizeRatio).toBeLessThanOrEqual(0.27)
    } else {
      expect(built.precision).not.toBe('int8-weight')
      expect(decision.rule).toBe(built.precision === 'fp32' ? 'profile preference' : 'faster past margin')
    }
  })
})
