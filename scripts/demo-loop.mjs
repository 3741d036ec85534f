// `pnpm demo --loop`: the retraining loop on the demo fleet, after the first
// deployment and with live traffic running (scripts/demo.mjs calls runLoop).
//   field baseline from calm traffic → inputs drift → drift events in the
//   feed → `edgefleet feed export` → scripts/refit-head.mjs re-fits the head
//   → `edgefleet model add --parent … --run-id … --canary` → built for every
//   profile → canary rollout under the default gates → promoted to all.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { api, cli, waitFor, wakeInput, MODELS, ROOT } from '../test/support/fleet.mjs'

/** Hub settings for the loop: seconds instead of hours (1 s rollup buckets, 20 s first window, drift every 2 s over 10 s). */
export const LOOP_RETRAINING = {
  ingest: { bucketMs: 1000 },
  drift: {
    intervalMs: 2000,
    windowMs: 10_000,
    fieldWindowMs: 20_000,
    minRequests: 100,
    minOutputCount: 60,
    minInputCount: 1000,
  },
}

/** Registration options the loop needs: output 39 is the wake-word probability, so agents report confidence. */
export const LOOP_OUTPUTS = { 39: 'probability' }

const drifted = (seed) => {
  const x = wakeInput(seed)
  const t = x['onnx::Flatten_0']
  return { 'onnx::Flatten_0': { ...t, data: t.data.map((v) => v + 2) } }
}

export async function runLoop({ hub, agents, tmp, step, setInput }) {
  const feed = async () =>
    (
      await (
        await fetch(`${hub.httpUrl}/api/v1/feed?model=wake-hello`, {
          headers: { authorization: `Bearer ${hub.token}` },
        })
      ).text()
    )
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  step('loop: capture policy (5% of requests at random) sent to every device')
  for (const a of agents)
    await api(hub.httpUrl, 'POST', `/api/v1/devices/${a.id}/capture-policy`, {
      policies: [{ model: 'wake-hello', random: 0.05, maxBytesPerHour: 50_000_000, maxBytesOnDisk: 20_000_000 }],
    })
  await waitFor(
    async () =>
      (await api(hub.httpUrl, 'GET', '/api/v1/models/wake-hello/versions/1.0.0/baseline')).items.some(
        (b) => b.source === 'field',
      ),
    { timeoutMs: 120_000, what: 'the field baseline' },
  )
  step('loop: field baseline of wake-hello@1.0.0 frozen from its first 20 s of calm traffic')
  setInput(drifted)
  step('loop: traffic drifts now (every input value +2: a new microphone gain, say)')
  const events = await waitFor(
    async () => {
      const d = (await feed()).filter((r) => r.kind === 'drift')
      return d.some((r) => r.subject === 'output:confidence') ? d : undefined
    },
    { timeoutMs: 120_000, what: 'a drift event' },
  )
  for (const e of events)
    step(
      `loop: feed #${e.cursor} drift ${e.subject} on ${e.profile}: PSI ${e.psi.toFixed(2)} > ${e.threshold} (baseline: ${e.baseline.source})`,
    )
  const first = Math.min(...events.map((e) => e.cursor))
  await waitFor(async () => (await feed()).filter((r) => r.kind === 'sample' && r.cursor > first).length >= 40, {
    timeoutMs: 120_000,
    what: 'drifted samples',
  })
  const dataset = join(tmp, 'dataset.tar')
  const ex = await cli([
    'feed',
    'export',
    'wake-hello',
    '--since',
    String(first - 1),
    '--out',
    dataset,
    '--hub',
    hub.httpUrl,
    '--json',
  ])
  if (ex.code !== 0) throw new Error(`feed export: ${ex.err}`)
  const exr = JSON.parse(ex.out)
  step(
    `loop: edgefleet feed export wake-hello --since ${first - 1} → ${exr.records} records, ${exr.samples} samples as .npy (next: --since ${exr.last})`,
  )
  const refit = join(tmp, 'wake-hello-1.1.0.onnx')
  const rep = JSON.parse(
    execFileSync(
      process.execPath,
      [
        join(ROOT, 'scripts', 'refit-head.mjs'),
        '--model',
        MODELS.wakeHello,
        '--dataset',
        dataset,
        '--out',
        refit,
        '--json',
      ],
      { encoding: 'utf8' },
    ),
  )
  step(
    `loop: scripts/refit-head.mjs re-fitted ${rep.tensor} on ${rep.samples} samples: mean output ${rep.meanBefore.toFixed(3)} → ${rep.meanAfter.toFixed(3)} (target ${rep.target.toFixed(3)} from ${rep.targetFrom})`,
  )
  const add = await cli([
    'model',
    'add',
    refit,
    '--hub',
    hub.httpUrl,
    '--name',
    'wake-hello',
    '--version',
    '1.1.0',
    '--output',
    '39=probability',
    '--parent',
    'wake-hello@1.0.0',
    '--run-id',
    'demo-refit-1',
    '--canary',
    '--waves',
    '1,50%,100%',
    '--soak',
    '5s',
    '--no-windows',
    '--json',
  ])
  if (add.code !== 0) throw new Error(`model add: ${add.err}${add.out}`)
  const intake = JSON.parse(add.out)
  step(
    `loop: taken in wake-hello@1.1.0 (parent ${intake.version.parent}, run ${intake.version.runId}), built: ${intake.builds.map((b) => `${b.profile}=${b.status}`).join(' ')}`,
  )
  if (!intake.intake.rollout) throw new Error(`no canary rollout: ${intake.intake.skipped}`)
  const id = intake.intake.rollout.id
  step(
    `loop: canary rollout ${id} started (waves 1 device → 50% → 100%, 5 s soak, default gates but confidence PSI: a re-fit is meant to move it)`,
  )
  let lastWave = -1
  const final = await waitFor(
    async () => {
      const r = await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${id}`)
      if (r.rollout.wave !== lastWave) {
        lastWave = r.rollout.wave
        step(`loop: rollout ${r.rollout.state}, wave ${r.rollout.wave + 1}`)
      }
      if (['paused', 'aborted', 'rolled_back'].includes(r.rollout.state))
        throw new Error(`rollout ${r.rollout.state}: ${r.rollout.reason}`)
      return r.rollout.state === 'completed' ? r : undefined
    },
    { timeoutMs: 300_000, intervalMs: 500, what: 'the canary rollout' },
  )
  step(`loop: rollout ${final.rollout.state}: wake-hello@1.1.0 promoted to every device`)
  const lin = await api(hub.httpUrl, 'GET', '/api/v1/models/wake-hello/lineage')
  for (const v of lin.items)
    step(
      `loop: lineage ${v.version}${v.parent ? ` ← ${v.parent} (run ${v.runId})` : ''}; rollouts ${v.rollouts.map((r) => `${r.id.slice(0, 8)} ${r.state}`).join(', ') || '-'}; drifting ${v.drifting.length}`,
    )
}
