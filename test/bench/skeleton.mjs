#!/usr/bin/env node
// Skeleton figures (issue: walking skeleton):
//   - time from `deploy` to every demo agent serving the new version
//   - agent idle RSS with one model loaded, beside a bare node + onnxruntime-node
//     process holding the same model (measured in the same run)
//   - hub RSS with the demo fleet
// Usage: node test/bench/skeleton.mjs [--reps 3]   (after `pnpm build`)
import { mkdtempSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { startHub, startFleet, api, waitFor, wakeInput, MODELS, ROOT } from '../support/fleet.mjs'

const { values: o } = parseArgs({ options: { reps: { type: 'string' } } })
const reps = Number(o.reps ?? 3)
const rssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** The floor: node + onnxruntime-node + one session after 100 runs, idle. */
async function bareFloor() {
  const code = `
    const ort = require(${JSON.stringify(join(ROOT, 'node_modules', 'onnxruntime-node'))});
    (async () => {
      const s = await ort.InferenceSession.create(${JSON.stringify(MODELS.wakeHello)}, { intraOpNumThreads: 1 });
      const x = new ort.Tensor('float32', new Float32Array(2400), [1, 25, 96]);
      for (let i = 0; i < 100; i++) await s.run({ 'onnx::Flatten_0': x });
      console.log('ready'); setInterval(() => {}, 1000);
    })();`
  const p = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((r) => p.stdout.once('data', r))
  await sleep(2000)
  const rss = rssMiB(p.pid)
  p.kill('SIGKILL')
  return rss
}

const tmp = mkdtempSync(join(tmpdir(), 'ef-bench-skel-'))
const FLEET = [
  { id: 'b-vehicle-gpu', profile: 'vehicle-arm64-gpu', tags: { fleet: 'b' } },
  { id: 'b-vehicle-ecu', profile: 'vehicle-x86-ecu', tags: { fleet: 'b' } },
  { id: 'b-phone', profile: 'phone-android-arm64', tags: { fleet: 'b' } },
  { id: 'b-rpi4', profile: 'gateway-rpi4', tags: { fleet: 'b' } },
  { id: 'b-armv7', profile: 'gateway-armv7-small', tags: { fleet: 'b' } },
  { id: 'b-ipc', profile: 'industrial-x86', tags: { fleet: 'b' } },
]
const hub = await startHub({ dataDir: join(tmp, 'hub') })
const agents = await startFleet(hub, FLEET, { tmp, telemetryMs: 2000 })
const results = { deployMs: [], deployHubMs: [] }
try {
  await waitFor(async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices')).items.every((d) => d.online), {
    what: 'online',
  })
  const idleNoModel = agents.map((a) => rssMiB(a.proc.pid))
  const models = [MODELS.wakeHello, MODELS.wakeNamaste]
  for (let r = 0; r < reps; r++) {
    const version = `1.${r}.0`
    // Register (and compile) first: the figure is deploy → serving, not compile time.
    await api(hub.httpUrl, 'POST', `/api/v1/models?name=wake&version=${version}`, readFileSync(models[r % 2]))
    const t0 = performance.now()
    const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', { model: 'wake', version, target: 'tag=fleet=b' })
    // "Serving" is observed from the devices' own local APIs, not from hub state.
    await Promise.all(
      agents.map((a) =>
        waitFor(async () => (await api(a.url, 'GET', '/v1/models')).items.some((m) => m.version === version), {
          intervalMs: 5,
          timeoutMs: 60_000,
          what: `${a.id} serving`,
        }),
      ),
    )
    results.deployMs.push(performance.now() - t0)
    await waitFor(
      async () => (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)).deployment.done,
      { intervalMs: 5, what: 'hub sees done' },
    )
    results.deployHubMs.push(performance.now() - t0)
  }
  // Warm every agent like the floor process (100 runs), then let it idle.
  const input = wakeInput(1)
  const last = `1.${reps - 1}.0`
  const lastInput =
    reps % 2 === 1
      ? input
      : {
          'onnx::Flatten_0': {
            ...input['onnx::Flatten_0'],
            dims: [1, 24, 96],
            data: input['onnx::Flatten_0'].data.slice(0, 2304),
          },
        }
  for (const a of agents)
    for (let i = 0; i < 100; i++) await api(a.url, 'POST', '/v1/models/wake/infer', { inputs: lastInput })
  await sleep(3000)
  const idleOneModel = agents.map((a) => rssMiB(a.proc.pid))
  const hubRss = rssMiB(hub.proc.pid)
  const floor = await bareFloor()
  const out = {
    machine: `${cpus().length} × ${cpus()[0].model}, node ${process.version}`,
    agents: agents.length,
    reps,
    deployToServingMs: { median: median(results.deployMs), all: results.deployMs.map(Math.round) },
    deployToHubDoneMs: { median: median(results.deployHubMs), all: results.deployHubMs.map(Math.round) },
    agentRssMiB: {
      idleNoModel: median(idleNoModel),
      idleOneModel: median(idleOneModel),
      max: Math.max(...idleOneModel),
    },
    bareNodeOrtOneSessionMiB: floor,
    agentOverheadMiB: median(idleOneModel) - floor,
    hubRssMiB: hubRss,
    lastVersion: last,
  }
  console.log(JSON.stringify(out, null, 2))
} finally {
  await Promise.all(agents.map((a) => a.stop()))
  await hub.stop()
  rmSync(tmp, { recursive: true, force: true })
}
