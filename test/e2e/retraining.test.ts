// The retraining loop end to end with real processes (hub, two agents on two
// profiles, real ORT, real aedes, real SQLite): a field baseline forms from
// calm traffic, inputs drift, a drift event reaches the feed, the feed is
// exported with the CLI, scripts/refit-head.mjs re-fits the head on it, the
// new version is taken in with lineage and the canary policy, built for
// every profile, rolled out under the default gates and promoted to all
// devices [EF-9.4, EF-9.5, EF-9.9, EF-9.11].
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  startHub,
  startFleet,
  api,
  cli,
  waitFor,
  wakeInput,
  MODELS,
  ROOT,
  type HubProc,
  type FleetAgent,
} from '../support/fleet.mjs'

const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-retrain-'))
let hub: HubProc
let agents: FleetAgent[] = []
let shift = 0
let traffic: NodeJS.Timeout | undefined
let sent = 0
let failed = 0

/** Wake-word input [1,25,96], drifted by `shift` (a +2 offset collapses the head's output to ~0). */
function input(seed: number) {
  const x = wakeInput(seed)
  const t = x['onnx::Flatten_0']
  return { 'onnx::Flatten_0': { ...t, data: t.data.map((v) => v + shift) } }
}

beforeAll(async () => {
  hub = await startHub({
    dataDir: join(tmp, 'hub'),
    env: {
      // Seconds instead of hours: 1 s rollup buckets, an 8 s first window for the field baseline, drift every second over 6 s.
      EF_RETRAINING: JSON.stringify({
        ingest: { bucketMs: 1000 },
        drift: {
          intervalMs: 1000,
          windowMs: 6000,
          fieldWindowMs: 8000,
          minRequests: 60,
          minOutputCount: 40,
          minInputCount: 1000,
        },
      }),
    },
  })
  agents = await startFleet(
    hub,
    [
      { id: 'gw-a', profile: 'gateway-rpi4', tags: { site: 'a' } },
      { id: 'ind-b', profile: 'industrial-x86', tags: { site: 'b' } },
    ],
    { tmp, telemetryMs: 500 },
  )
  await waitFor(
    async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices')).items.every((d: { online: boolean }) => d.online),
    { what: 'agents online' },
  )
})

afterAll(async () => {
  if (traffic) clearInterval(traffic)
  await Promise.all(agents.map((a) => a.stop()))
  await hub?.stop()
  rmSync(tmp, { recursive: true, force: true })
})

function startTraffic(perTick = 4) {
  traffic = setInterval(() => {
    for (const a of agents)
      for (let i = 0; i < perTick; i++) {
        sent++
        fetch(`${a.url}/v1/models/wake-hello/infer`, { method: 'POST', body: JSON.stringify({ inputs: input(sent) }) })
          .then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(String(r.status)))))
          .catch(() => failed++)
      }
  }, 100)
}

const feed = async (q: string) =>
  (await (await fetch(`${hub.httpUrl}/api/v1/feed?${q}`, { headers: { authorization: `Bearer ${hub.token}` } })).text())
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown> & { cursor: number; kind: string })

describe('retraining loop', () => {
  it('drift → feed → export → re-fit → intake with lineage → build → canary → promoted', async () => {
    // v1 with its output's meaning, so agents report confidence [EF-2.6.4].
    const add1 = await cli([
      'model',
      'add',
      MODELS.wakeHello,
      '--hub',
      hub.httpUrl,
      '--name',
      'wake-hello',
      '--version',
      '1.0.0',
      '--output',
      '39=probability',
      '--json',
    ])
    expect(add1.code, add1.err).toBe(0)
    const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'wake-hello',
      version: '1.0.0',
      target: 'profile=gateway-rpi4',
    })
    const dep2 = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'wake-hello',
      version: '1.0.0',
      target: 'profile=industrial-x86',
    })
    for (const id of [dep.deployment.id, dep2.deployment.id])
      await waitFor(async () => (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)).deployment.done, {
        timeoutMs: 120_000,
        what: 'v1 deployed',
      })
    for (const a of agents)
      await api(hub.httpUrl, 'POST', `/api/v1/devices/${a.id}/capture-policy`, {
        policies: [{ model: 'wake-hello', random: 0.05, maxBytesPerHour: 50_000_000, maxBytesOnDisk: 20_000_000 }],
      })

    // Calm traffic: the version's first 8 s in the field become its baseline.
    startTraffic()
    await waitFor(
      async () =>
        (await api(hub.httpUrl, 'GET', '/api/v1/models/wake-hello/versions/1.0.0/baseline')).items.some(
          (b: { source: string }) => b.source === 'field',
        ),
      { timeoutMs: 60_000, what: 'the field baseline' },
    )
    await waitFor(async () => (await api(hub.httpUrl, 'GET', '/api/v1/drift?model=wake-hello')).items.length >= 4, {
      timeoutMs: 30_000,
      what: 'drift values',
    })
    expect((await feed('model=wake-hello')).filter((r) => r.kind === 'drift')).toEqual([])

    // Inputs drift (+2 offset): PSI of the input sketch and of the confidence rise over 0.2 on both profiles.
    shift = 2
    const drift = await waitFor(
      async () => {
        const d = (await feed('model=wake-hello')).filter((r) => r.kind === 'drift')
        return d.some((r) => r.subject === 'output:confidence') && d.some((r) => r.subject === 'input:onnx::Flatten_0')
          ? d
          : undefined
      },
      { timeoutMs: 60_000, what: 'drift events in the feed' },
    )
    for (const e of drift)
      expect(e).toMatchObject({ model: 'wake-hello', version: '1.0.0', baseline: { source: 'field' } })
    expect(Math.min(...drift.map((e) => e.psi as number))).toBeGreaterThan(0.2)
    // Let the drifted captures accumulate, then export the dataset with the CLI.
    await waitFor(
      async () =>
        (await feed('model=wake-hello')).filter((r) => r.kind === 'sample' && r.cursor > drift[0].cursor).length >= 20,
      { timeoutMs: 60_000, what: 'drifted samples' },
    )
    const since = drift[0].cursor - 1
    const dataset = join(tmp, 'dataset.tar')
    const ex = await cli([
      'feed',
      'export',
      'wake-hello',
      '--since',
      String(since),
      '--out',
      dataset,
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(ex.code, ex.err).toBe(0)
    expect(JSON.parse(ex.out)).toMatchObject({ samples: expect.any(Number) })

    // The "training pipeline": re-fit the head so the mean output on the drifted data returns to the baseline's.
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
    ) as { meanBefore: number; meanAfter: number; target: number; samples: number }
    expect(rep.samples).toBeGreaterThanOrEqual(20)
    expect(rep.meanBefore).toBeLessThan(0.1)
    expect(Math.abs(rep.meanAfter - rep.target)).toBeLessThan(0.01)

    // A bad parent is refused; then intake with lineage and the canary policy.
    const bad = await cli([
      'model',
      'add',
      refit,
      '--hub',
      hub.httpUrl,
      '--name',
      'wake-hello',
      '--version',
      '1.1.0',
      '--parent',
      'wake-hello@9.9',
      '--json',
    ])
    expect(bad.code).toBe(1)
    expect(JSON.parse(bad.out)).toMatchObject({ error: { code: 'EF_ERR_PARENT_INVALID' } })
    const add2 = await cli([
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
      // Latency is not what this test checks (test/e2e/rollout.test.ts does): a 3 s soak on a shared 2-core machine saw a
      // p95 ratio of 2.1 against the device's own earlier hour once in four full-suite runs, so its gate is wider here.
      '--parent',
      'wake-hello@1.0.0',
      '--run-id',
      'refit-e2e-1',
      '--canary',
      '--waves',
      '1,100%',
      '--soak',
      '3s',
      '--min-requests',
      '20',
      '--max-p95-ratio',
      '3',
      '--no-windows',
      '--json',
    ])
    expect(add2.code, add2.err + add2.out).toBe(0)
    const intake = JSON.parse(add2.out) as {
      builds: { profile: string; status: string }[]
      intake: { rollout: { id: string } | null; skipped: string | null }
      version: { parent: string; runId: string }
    }
    expect(intake.builds.map((b) => `${b.profile}:${b.status}`).sort()).toEqual([
      'gateway-rpi4:ok',
      'industrial-x86:ok',
    ])
    expect(intake.version).toMatchObject({ parent: 'wake-hello@1.0.0', runId: 'refit-e2e-1' })
    expect(intake.intake.skipped).toBeNull()
    const rolloutId = intake.intake.rollout!.id

    // The canary (default confidence gate) passes on live (still drifted) traffic and reaches every device.
    const done = await waitFor(
      async () => {
        const r = await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${rolloutId}`)
        if (['paused', 'aborted', 'rolled_back'].includes(r.rollout?.state ?? r.state))
          throw new Error(`rollout ${JSON.stringify(r).slice(0, 2000)}`)
        return (r.rollout?.state ?? r.state) === 'completed' ? r : undefined
      },
      { timeoutMs: 150_000, intervalMs: 500, what: 'the canary rollout to complete' },
    )
    expect(done).toBeTruthy()
    // With the default confidence gate: the re-fitted version answers with more confidence than 1.0.0 on the drifted
    // traffic, which the one-sided confidence gate lets through [EF-8.5].
    const passes = (done.decisions as { decision: string; detail: { confidenceShift?: number | null } }[]).filter(
      (d) => d.decision === 'pass',
    )
    expect(passes.length).toBeGreaterThan(0)
    for (const p of passes) if (p.detail.confidenceShift != null) expect(p.detail.confidenceShift).toBeGreaterThan(0)
    const devs = await api(hub.httpUrl, 'GET', '/api/v1/devices')
    for (const d of devs.items as { models: { name: string; version: string }[] }[])
      expect(d.models.find((m) => m.name === 'wake-hello')?.version).toBe('1.1.0')

    // Lineage: parent, run id, builds and the rollout, visible over the API.
    const lin = await api(hub.httpUrl, 'GET', '/api/v1/models/wake-hello/lineage')
    const v11 = lin.items.find((v: { version: string }) => v.version === '1.1.0')
    expect(v11).toMatchObject({
      parent: 'wake-hello@1.0.0',
      runId: 'refit-e2e-1',
      rollouts: [{ id: rolloutId, state: 'completed' }],
    })
    expect(v11.builds.map((b: { status: string }) => b.status)).toEqual(['ok', 'ok'])
    // The re-fitted head restores the output on the drifted traffic: 1.1.0's confidence sits where 1.0.0's baseline was.
    await waitFor(
      async () =>
        (await api(hub.httpUrl, 'GET', '/api/v1/telemetry/summary?model=wake-hello')).items.some(
          (t: { version: string; requests: number }) => t.version === '1.1.0' && t.requests > 50,
        ),
      { what: '1.1.0 traffic' },
    )
    expect(failed).toBe(0)
    expect(existsSync(dataset)).toBe(true)
    expect(readFileSync(dataset).length).toBeGreaterThan(1024)
  })
})
