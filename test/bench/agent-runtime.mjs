// Agent runtime figures (run against built dist: `pnpm build` first):
//   1. local HTTP API p50 overhead over a bare session.run on the same model, same run;
//   2. in-process API (ModelHost.infer, what createAgent().infer calls) overhead;
//   3. requests/s on this machine through the HTTP API (tiny model, keep-alive clients);
//   4. agent RSS idle (no model / one model) and under load, from real agent processes
//      (the bundled dist/edgefleet-agent.mjs that devices run, and the unbundled
//      dist/cli.js), beside the floor measured in the same run: a bare node
//      process with onnxruntime-node and the same session (same options) after
//      100 runs. The agent's overhead is its RSS minus that floor.
// Usage: node test/bench/agent-runtime.mjs [--n 3000] [--seconds 5] [--rss-only]
import { parseArgs } from 'node:util'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, copyFileSync, readFileSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import http from 'node:http'
import { createHash } from 'node:crypto'
import * as ort from 'onnxruntime-node'
import { ROOT, MODELS, wakeInput, stopProcess } from '../support/fleet.mjs'

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '3000' },
    seconds: { type: 'string', default: '5' },
    'rss-only': { type: 'boolean' },
  },
})
const requestCount = Number(values.n)
const SECONDS = Number(values.seconds)
const dist = (p) => join(ROOT, 'agent', 'dist', p)
const { ModelHost } = await import(dist('runtime/host.js'))
const { createApiServer } = await import(dist('api/server.js'))
const { Slots } = await import(dist('updater/slots.js'))
const shared = await import(join(ROOT, 'shared', 'dist', 'index.js'))

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}
const r4 = (x) => Math.round(x * 10000) / 10000

const feedsData = Float32Array.from(wakeInput(7)['onnx::Flatten_0'].data)
const manifest = {
  v: 1,
  model: 'wake',
  version: '1.0.0',
  profile: 'bench',
  precision: 'fp32',
  createdAt: 0,
  artifact: { format: 'onnx', digest: '0'.repeat(64), size: 0, chunks: [{ digest: '0'.repeat(64), size: 0 }] },
  inputs: [],
  outputs: [],
  semantics: [{ name: '39', kind: 'probability' }],
  healthCheck: { inputs: {}, outputs: {}, atol: 0, rtol: 0 },
}
const jsonBody = JSON.stringify({
  inputs: { 'onnx::Flatten_0': { type: 'float32', dims: [1, 25, 96], data: Array.from(feedsData) } },
})
const { encodeBinaryRequest } = await import(dist('api/binary.js'))
const binBody = encodeBinaryRequest({ 'onnx::Flatten_0': { type: 'float32', dims: [1, 25, 96], data: feedsData } })
let p50, overhead, series, rps
if (!values['rss-only']) ({ p50, overhead, series, rps } = await latencyAndThroughput())

async function latencyAndThroughput() {
  // --- 1-2: overheads, interleaved in one run -----------------------------------
  const bare = await ort.InferenceSession.create(MODELS.wakeHello, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  })
  const host = new ModelHost({ threads: 1, executionProviders: ['cpu'] })
  host.activate(manifest, 'a', await host.open(MODELS.wakeHello))
  const server = createApiServer({ host, maxBodyBytes: 1 << 24, deviceId: 'bench' })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = server.address().port
  const agentHttp = new http.Agent({ keepAlive: true, maxSockets: 64 })
  const b64Body = JSON.stringify({
    inputs: {
      'onnx::Flatten_0': { type: 'float32', dims: [1, 25, 96], b64: Buffer.from(feedsData.buffer).toString('base64') },
    },
  })
  function post(body, type = 'application/json') {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/models/wake/infer',
          agent: agentHttp,
          headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const parts = []
          res.on('data', (c) => parts.push(c))
          res.on('end', () =>
            res.statusCode === 200 ? resolve(Buffer.concat(parts)) : reject(new Error(String(res.statusCode))),
          )
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  }

  const series = { bare: [], inproc: [], httpJson: [], httpB64: [], httpBinary: [] }
  const runBare = async () => {
    const t0 = performance.now()
    await bare.run({ 'onnx::Flatten_0': new ort.Tensor('float32', feedsData, [1, 25, 96]) })
    return performance.now() - t0
  }
  const runIn = async () => {
    const t0 = performance.now()
    await host.infer('wake', { 'onnx::Flatten_0': { type: 'float32', dims: [1, 25, 96], data: feedsData } })
    return performance.now() - t0
  }
  const runHttp = (body, type) => async () => {
    const t0 = performance.now()
    await post(body, type)
    return performance.now() - t0
  }
  const steps = [
    ['bare', runBare],
    ['inproc', runIn],
    ['httpJson', runHttp(jsonBody)],
    ['httpB64', runHttp(b64Body)],
    ['httpBinary', runHttp(binBody, 'application/x-edgefleet-tensors')],
  ]
  for (let i = 0; i < 300; i++) for (const [, f] of steps) await f() // warm up
  for (let i = 0; i < requestCount; i++) for (const [k, f] of steps) series[k].push(await f())
  const p50 = Object.fromEntries(Object.entries(series).map(([k, v]) => [k, r4(pct(v, 0.5))]))
  const overhead = {
    inprocMs: r4(p50.inproc - p50.bare),
    inprocPct: Math.round(((p50.inproc - p50.bare) / p50.bare) * 1000) / 10,
    httpJsonMs: r4(p50.httpJson - p50.bare),
    httpB64Ms: r4(p50.httpB64 - p50.bare),
    httpBinaryMs: r4(p50.httpBinary - p50.bare),
  }

  // --- 3: throughput -----------------------------------------------------------
  async function throughput(concurrency, body, type) {
    let done = 0
    const end = performance.now() + SECONDS * 1000
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          await post(body, type)
          done++
        }
      }),
    )
    return Math.round(done / SECONDS)
  }
  const rps = {
    binaryC4: await throughput(4, binBody, 'application/x-edgefleet-tensors'),
    jsonC4: await throughput(4, jsonBody),
  }
  server.close()
  agentHttp.destroy()
  await host.close()
  await bare.release()
  return { p50, overhead, series, rps }
}

// --- 4: RSS of real agent processes ------------------------------------------
const tmp = mkdtempSync(join(tmpdir(), 'ef-bench-rt-'))
const keys = shared.generateSigningKeys()
function seedModel(dataDir) {
  // A verified slot signed with a bench key, as a deploy would leave it; the agent restores it at start.
  const slots = new Slots(join(dataDir, 'models'))
  slots.clear('wake', 'a')
  copyFileSync(MODELS.wakeHello, slots.modelPath('wake', 'a'))
  const bytes = readFileSync(MODELS.wakeHello)
  const digest = createHash('sha256').update(bytes).digest('hex')
  const m = {
    ...manifest,
    profile: 'gateway-rpi4',
    artifact: { format: 'onnx', digest, size: bytes.length, chunks: [{ digest, size: bytes.length }] },
  }
  slots.writeManifest('wake', 'a', m, shared.signDocument(m, shared.privateKeyFromPem(keys.privateKeyPem)))
  slots.setActive('wake', 'a', '1.0.0')
}
// How each series starts the agent: the bundle as the systemd unit runs it (agent/deploy: a 1 MiB
// young generation), the bundle with node's defaults, and the unbundled tsc output.
const INSTALLED_FLAGS = ['--max-semi-space-size=1']
const ENTRIES = {
  installed: [...INSTALLED_FLAGS, dist('edgefleet-agent.mjs')],
  bundle: [dist('edgefleet-agent.mjs')],
  unbundled: [dist('cli.js')],
}
const round1 = (x) => Math.round(x * 10) / 10
/**
 * The floor: bare node + onnxruntime-node + one session of the same model with
 * the options the agent uses on this profile (gateway-rpi4: 4 threads, capped
 * at the machine's cores; no spinning), after 100 runs, 2 s idle.
 */
async function floorRss() {
  const script = `
    import * as ort from 'onnxruntime-node'
    import { readFileSync } from 'node:fs'
    import { availableParallelism } from 'node:os'
    const s = await ort.InferenceSession.create(${JSON.stringify(MODELS.wakeHello)}, { executionProviders: ['cpu'], intraOpNumThreads: Math.min(4, availableParallelism()), interOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } })
    const x = new Float32Array(25 * 96).fill(0.1)
    for (let i = 0; i < 100; i++) await s.run({ 'onnx::Flatten_0': new ort.Tensor('float32', x, [1, 25, 96]) })
    await new Promise((r) => setTimeout(r, 2000))
    console.log(Number(readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\\s+(\\d+)/)[1]) / 1024)
  `
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  proc.stdout.on('data', (c) => (out += c))
  await once(proc, 'exit')
  return round1(Number(out.trim()))
}
async function agentRss(entry, withModel, load) {
  const dataDir = join(tmp, `a-${entry}-${withModel}-${load}`)
  if (withModel) seedModel(dataDir)
  // No broker on port 1: the agent runs offline (as on a device between connections), queuing telemetry.
  const proc = spawn(
    process.execPath,
    [
      ...ENTRIES[entry],
      '--hub',
      'mqtt://127.0.0.1:1',
      '--device-id',
      'bench-1',
      '--secret',
      's',
      '--hub-key',
      keys.publicKey,
      '--profile',
      'gateway-rpi4',
      '--data',
      dataDir,
      '--api-port',
      '0',
      '--log-level',
      'error',
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const [line] = await once(proc.stdout, 'data')
  const info = JSON.parse(String(line))
  const rss = () => Number(readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024
  const local = (body, type) =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: info.apiPort,
          method: 'POST',
          path: '/v1/models/wake/infer',
          headers: { 'content-type': type, 'content-length': body.length },
        },
        (res) => {
          res.resume()
          res.on('end', resolve)
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  if (withModel) for (let i = 0; i < 100; i++) await local(binBody, 'application/x-edgefleet-tensors')
  let peak = 0
  let served = 0
  if (load) {
    const end = Date.now() + SECONDS * 1000
    const sampler = setInterval(() => (peak = Math.max(peak, rss())), 100)
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < end) {
          await local(Buffer.from(jsonBody), 'application/json')
          served++
        }
      }),
    )
    clearInterval(sampler)
  }
  await new Promise((r) => setTimeout(r, 2000))
  const idle = rss()
  await stopProcess(proc)
  return {
    idleMiB: Math.round(idle * 10) / 10,
    ...(load
      ? { peakUnderLoadMiB: Math.round(peak * 10) / 10, jsonRequestsPerSecond: Math.round(served / SECONDS) }
      : {}),
  }
}
// Interleaved, twice each, so a drift of the machine hits every series alike; the lower of two is kept (RSS noise is upward).
const runs = {
  floor: [],
  installedNoModel: [],
  installedOneModel: [],
  bundleNoModel: [],
  bundleOneModel: [],
  unbundledNoModel: [],
  unbundledOneModel: [],
}
for (let i = 0; i < 2; i++) {
  runs.floor.push(await floorRss())
  for (const e of ['installed', 'bundle', 'unbundled']) {
    runs[`${e}NoModel`].push((await agentRss(e, false, false)).idleMiB)
    runs[`${e}OneModel`].push((await agentRss(e, true, false)).idleMiB)
  }
}
const best = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, Math.min(...v)]))
const seriesOf = (e) => ({
  noModelMiB: best[`${e}NoModel`],
  oneModelMiB: best[`${e}OneModel`],
  overheadMiB: round1(best[`${e}OneModel`] - best.floor),
})
const rss = {
  runs,
  floorMiB: best.floor,
  installed: seriesOf('installed'),
  bundle: seriesOf('bundle'),
  unbundled: seriesOf('unbundled'),
  // 4 keep-alive clients of JSON requests through the real agent process, then 2 s idle.
  installedAfterLoad: await agentRss('installed', true, true),
  bundleAfterLoad: await agentRss('bundle', true, true),
}
rmSync(tmp, { recursive: true, force: true })

const latency = p50
  ? {
      n: requestCount,
      p50Ms: p50,
      p99Ms: Object.fromEntries(Object.entries(series).map(([k, v]) => [k, r4(pct(v, 0.99))])),
      overhead,
      requestsPerSecond: rps,
    }
  : {}
console.log(
  JSON.stringify(
    {
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        node: process.version,
        loadavg: (await import('node:os')).loadavg().map((x) => Math.round(x * 100) / 100),
      },
      ...latency,
      rss,
    },
    null,
    1,
  ),
)
