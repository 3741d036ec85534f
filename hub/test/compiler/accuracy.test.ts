// Fresh-input accuracy of the OCR int8-static builds: calibrated on one set of
// text images, judged on images the compiler never saw (another seed). This is
// the regression test for the "OCR int8 is bad off-distribution" report: the
// rec/cls images were normalized like det's (a white page at 2.25 instead of
// 1.0), and the full det QDQ build loses ~0.25 cosine in its stem — the same as
// ONNX Runtime's own quantize_static on the same inputs (docs/benchmarks/compiler.md).
import { readFileSync, rmSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { compile, openSession, run } from '../../src/compiler/index.js'
import { compareOutputs } from '../../src/compiler/measure.js'
import { shipped, testProfile, textCalibrationDir, textImage } from '../fixtures/compiler/models.js'

const dirs: string[] = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

describe('OCR int8-static on fresh text images', () => {
  it('rec/cls fixtures use PaddleOCR rec normalization ([-1, 1]), det ImageNet mean/std', () => {
    const rec = textImage([1, 3, 48, 160], 1, 'rec')
    expect(Math.max(...rec)).toBeLessThanOrEqual(1)
    expect(Math.min(...rec)).toBeGreaterThanOrEqual(-1)
    expect(Math.max(...textImage([1, 3, 48, 160], 1, 'det'))).toBeGreaterThan(2)
  })

  it.each([
    // [model, mean cosine ≥, lowest cosine ≥, top-1 ≥]
    ['ocr-det', 0.95, 0.9, undefined],
    ['ocr-rec', 0.95, 0.75, 0.9],
  ] as const)('%s: calibrated on seeds 7.., validated on seeds 5000..', async (name, meanCos, minCos, top1) => {
    const m = shipped[name]
    const img = m.images!
    const calibrationDir = textCalibrationDir(img.input, img.dims, 10, 7, img.norm)
    dirs.push(calibrationDir)
    const model = new Uint8Array(readFileSync(m.file))
    const profile = testProfile({
      precisions: ['int8-static'],
      accuracyBudget: { minCosine: 0.95, maxTop1Disagreement: 0.1 },
    })
    const built = await compile(model, profile, {
      precision: 'int8-static',
      calibrationDir,
      validationSamples: 3,
      timing: false,
    })
    expect(built.report.calibration).toMatchObject({ samples: 7, validationSamples: 3 })
    const [floatSession, builtSession] = [await openSession(model), await openSession(built.bytes)]
    try {
      const refs = []
      const gots = []
      for (let s = 5000; s < 5006; s++) {
        const x = { [img.input]: { type: 'float32' as const, dims: img.dims, data: textImage(img.dims, s, img.norm) } }
        refs.push(await run(floatSession, x))
        gots.push(await run(builtSession, x))
      }
      const a = compareOutputs(refs, gots)
      console.log(
        `${name} int8-static fresh: mean cosine ${a.meanCosine.toFixed(4)} min ${a.cosine.toFixed(4)}${a.top1Agreement !== undefined ? ` top1 ${a.top1Agreement.toFixed(3)}` : ''} (${(built.report.notes as string[]).join('; ')})`,
      )
      expect(a.meanCosine).toBeGreaterThanOrEqual(meanCos)
      expect(a.cosine).toBeGreaterThanOrEqual(minCos)
      if (top1 !== undefined) expect(a.top1Agreement).toBeGreaterThanOrEqual(top1)
    } finally {
      await floatSession.release()
      await builtSession.release()
    }
  })
})
