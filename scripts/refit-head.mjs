#!/usr/bin/env node
// The "training pipeline" of the demo loop: re-fits the bias of a model's
// final Gemm (the head in front of its Sigmoid) on samples exported from the
// retraining feed, so that the model's mean output on that data returns to a
// target — by default the mean confidence of the baseline named by the
// newest output drift event in the export (Platt-style recalibration: one
// tensor changes, so the update moves only the head's bytes).
//   node scripts/refit-head.mjs --model in.onnx --dataset dataset.tar --out out.onnx [--target-mean 0.5] [--json]
// Needs `npx tsc -b` (uses the hub's ONNX codec and ORT door from hub/dist).
import { readFileSync, writeFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const { decodeModel, encodeModel, openSession, run, readNpy } = await import(
  join(ROOT, 'hub', 'dist', 'compiler', 'index.js')
)
const { readTarFiles } = await import(join(ROOT, 'hub', 'dist', 'feed', 'tar.js'))

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    dataset: { type: 'string' },
    out: { type: 'string' },
    'target-mean': { type: 'string' },
    json: { type: 'boolean' },
  },
})
if (!args.model || !args.dataset || !args.out) {
  process.stderr.write('usage: refit-head.mjs --model in.onnx --dataset dataset.tar --out out.onnx [--target-mean P]\n')
  process.exit(2)
}

const files = await readTarFiles(args.dataset)
const index =
  files
    .get('index.jsonl')
    ?.toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l)) ?? []
const samples = index.filter((r) => r.kind === 'sample' && r.files?.inputs)
if (samples.length === 0) throw new Error(`${args.dataset} holds no samples`)

// Target: the explicit one, else the mean confidence of the newest output drift event's baseline.
let target = args['target-mean'] !== undefined ? Number(args['target-mean']) : undefined
let targetFrom = 'the command line'
if (target === undefined) {
  const ev = index.filter((r) => r.kind === 'drift' && r.subject === 'output:confidence' && r.baseline?.bins).at(-1)
  if (!ev) throw new Error('no output drift event in the export: give --target-mean')
  const bins = ev.baseline.bins
  const n = bins.reduce((a, b) => a + b, 0)
  target = bins.reduce((a, c, i) => a + (c * (i + 0.5)) / 10, 0) / n
  targetFrom = `the ${ev.baseline.source} baseline of drift event ${ev.cursor}`
}

const modelBytes = readFileSync(args.model)
const model = decodeModel(modelBytes)
const graph = model.graph
const outName = graph.output[0].name
const sig = graph.node.find((n) => n.op_type === 'Sigmoid' && n.output[0] === outName)
const gemm = sig && graph.node.find((n) => n.op_type === 'Gemm' && n.output[0] === sig.input[0])
const bias = gemm && graph.initializer.find((t) => t.name === gemm.input[2])
if (!bias) throw new Error('expected the model to end in Gemm(…, bias) → Sigmoid (a classifier head)')

// Logits of the current model on the exported inputs.
const session = await openSession(modelBytes)
const inputName = graph.input[0].name
const logits = []
for (const s of samples) {
  const path = s.files.inputs[inputName] ?? Object.values(s.files.inputs)[0]
  const x = readNpy(files.get(path), path)
  const y = (await run(session, { [inputName]: x }))[outName]
  for (const p of y.data) logits.push(Math.log(Math.max(1e-7, p) / Math.max(1e-7, 1 - p)))
}
const meanAt = (shift) => logits.reduce((a, z) => a + 1 / (1 + Math.exp(-(z + shift))), 0) / logits.length
// The mean output is monotone in the shift: bisect.
let lo = -50
let hi = 50
for (let i = 0; i < 100; i++) {
  const mid = (lo + hi) / 2
  if (meanAt(mid) < target) lo = mid
  else hi = mid
}
const shift = (lo + hi) / 2
const before = meanAt(0)

const raw =
  bias.raw_data && bias.raw_data.length
    ? new Float32Array(new Uint8Array(bias.raw_data).slice().buffer)
    : Float32Array.from(bias.float_data)
for (let i = 0; i < raw.length; i++) raw[i] += shift
bias.raw_data = new Uint8Array(raw.buffer)
bias.float_data = []
model.doc_string =
  `${model.doc_string ?? ''} refit-head: bias ${gemm.input[2]} shifted by ${shift.toFixed(4)} on ${samples.length} samples`.trim()
writeFileSync(args.out, encodeModel(model))
const report = {
  samples: samples.length,
  outputs: logits.length,
  target,
  targetFrom,
  meanBefore: before,
  meanAfter: meanAt(shift),
  biasShift: shift,
  tensor: gemm.input[2],
  out: args.out,
}
process.stdout.write(
  (args.json
    ? JSON.stringify(report)
    : `re-fitted ${gemm.input[2]} on ${samples.length} samples: mean output ${before.toFixed(3)} → ${report.meanAfter.toFixed(3)} (target ${target.toFixed(3)} from ${targetFrom}); wrote ${args.out}`) +
    '\n',
)
