// A hub behind an external broker killed between acknowledging telemetry and
// committing it [EF-9.1.1]: Mosquitto delivered the batches and got the hub's
// PUBACKs, so nobody holds them any more but the hub's receipt journal. The
// hub (a real child process) is started with a 60 s group-commit delay, so
// the kill -9 lands inside that window every time; restarted, it replays the
// journal and stores every batch exactly once.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { LATENCY_BUCKETS_MS, topics } from '@edgefleet/shared'
import { api, startHub, waitFor, type HubProc } from '../support/fleet.mjs'
import { startMosquitto, type Mosquitto } from '../support/mosquitto.mjs'

const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-ingest-crash-'))
const journalDir = join(tmp, 'hub', 'ingest-journal')
const BATCHES = 10
const REQUESTS = 7
let mosq: Mosquitto | undefined
let hub: HubProc | undefined

afterAll(async () => {
  await hub?.stop()
  await mosq?.stop()
  rmSync(tmp, { recursive: true, force: true })
})

const hubArgs = (m: Mosquitto) => ['--broker', m.url, '--mosquitto-dir', m.dir, '--mosquitto-pid-file', m.pidFile]

function telemetryBatch(i: number) {
  const latency = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)
  latency[3] = REQUESTS
  const to = Date.now() - 60_000 + i * 1000
  return {
    v: 1,
    deviceId: 'd1',
    batchId: `crash-batch-${i}`,
    from: to - 1000,
    to,
    models: [{ model: 'm', version: '1.0.0', requests: REQUESTS, errors: 0, latency, latencySumMs: REQUESTS * 0.5 }],
  }
}

async function messagesIn(httpUrl: string): Promise<number> {
  const text = await (await fetch(new URL('/metrics', httpUrl))).text()
  return Number(/^edgefleet_mqtt_messages_in_total (\d+)/m.exec(text)?.[1] ?? 0)
}

const journalLines = () =>
  readdirSync(journalDir)
    .map((name) => readFileSync(join(journalDir, name), 'utf8'))
    .join('')
    .split('\n')
    .filter(Boolean).length

it('a hub killed -9 after acknowledging and before committing stores every batch once after its restart', async () => {
  mosq = await startMosquitto(join(tmp, 'mosquitto'))
  const slowCommit = { EF_RETRAINING: JSON.stringify({ ingest: { flushMs: 60_000 } }) }
  hub = await startHub({ dataDir: join(tmp, 'hub'), extraArgs: hubArgs(mosq), env: slowCommit })
  const { secret } = await api(hub.httpUrl, 'POST', '/api/v1/devices', { id: 'd1', profile: 'gateway-rpi4' })
  const device = await waitFor(
    () => mqtt.connectAsync(mosq!.url, { clientId: 'd1', username: 'd1', password: secret, reconnectPeriod: 0 }),
    { what: 'Mosquitto knows the device', timeoutMs: 20_000 },
  )
  // Telemetry counts only for a version the device reports loaded [EF-2.6.8].
  const loaded = { name: 'm', version: '1.0.0', precision: 'fp32', artifact: 'a'.repeat(64), slot: 'a' }
  const state = { v: 1, deviceId: 'd1', online: true, ts: Date.now(), models: [loaded] }
  await device.publishAsync(topics.state('d1'), JSON.stringify(state), { qos: 1, retain: true })
  await waitFor(async () => (await api(hub!.httpUrl, 'GET', '/api/v1/devices/d1')).device.models.length === 1, {
    what: 'state stored',
  })
  for (let i = 0; i < BATCHES; i++)
    await device.publishAsync(topics.telemetry('d1'), JSON.stringify(telemetryBatch(i)), { qos: 1 })
  // Every batch reached the hub, which acknowledged it to Mosquitto (the state and the batches were read);
  // none is committed yet. The journal holds them.
  await waitFor(async () => (await messagesIn(hub!.httpUrl)) >= BATCHES + 1, { what: 'batches read by the hub' })
  expect(journalLines()).toBe(BATCHES)
  expect((await api(hub.httpUrl, 'GET', '/api/v1/telemetry/summary?device=d1')).items).toEqual([])
  hub.proc.kill('SIGKILL')
  await new Promise((resolve) => hub!.proc.once('exit', resolve))
  await device.endAsync()

  hub = await startHub({ dataDir: join(tmp, 'hub'), extraArgs: hubArgs(mosq) })
  const stored = async () =>
    ((await api(hub!.httpUrl, 'GET', '/api/v1/telemetry/summary?device=d1')).items as { requests: number }[]).reduce(
      (sum, item) => sum + item.requests,
      0,
    )
  await waitFor(async () => (await stored()) > 0, { what: 'replayed batches stored' })
  expect(await stored()).toBe(BATCHES * REQUESTS)
  // Replayed and committed: the journal is empty again.
  await waitFor(() => journalLines() === 0, { what: 'journal emptied' })
}, 120_000)
