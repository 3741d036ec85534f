// Light MQTT device simulator for rollout tests and the rollout benchmark:
// each simulated device is a real MQTT connection (device credentials, ACL)
// that publishes a retained state, answers deploy commands with `received` →
// `activated` and a fresh state (no download: it trusts the hub), and sends
// telemetry batches whose numbers come from a behaviour function per version.
// It exercises the hub's real broker, dispatcher, store and rollout engine;
// it does not run models (the e2e suites use real agents for that).
import mqtt from 'mqtt'
import { randomUUID } from 'node:crypto'

const LAT_BOUNDS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
const DIGEST = 'a'.repeat(64)

function latencyCounts(ms, n) {
  const c = new Array(LAT_BOUNDS.length + 1).fill(0)
  let i = LAT_BOUNDS.findIndex((b) => ms <= b)
  if (i < 0) i = LAT_BOUNDS.length
  c[i] = n
  return c
}

/**
 * @param {object} o
 * @param {string} o.mqttUrl
 * @param {{id: string, secret: string, profile: string, model?: string, version?: string, conditions?: {network?: string, power?: string, idle?: boolean}}[]} o.devices
 * @param {() => number} [o.now] clock for message timestamps (fake clocks in tests)
 * @param {(version: string, deviceId: string) => {requests: number, errors: number, latencyMs: number, confidenceBin?: number, agreement?: number}} [o.behavior] agreement: top-1 agreement of this version when shadowed
 * @param {boolean} [o.autoActivate] answer deploys with activated (default true)
 */
export async function startSimFleet({
  mqttUrl,
  devices,
  now = Date.now,
  behavior = () => ({ requests: 10, errors: 0, latencyMs: 1 }),
  autoActivate = true,
}) {
  const sims = new Map()
  const deploys = []
  const shadows = []
  const connectOne = (device) =>
    new Promise((resolve, reject) => {
      const state = {
        models: device.model && device.version ? [{ name: device.model, version: device.version }] : [],
        conditions: { network: 'unmetered', power: 'charging', idle: true, ...(device.conditions ?? {}) },
      }
      const topic = (k) => `ef/v1/dev/${device.id}/${k}`
      const client = mqtt.connect(mqttUrl, {
        clientId: device.id,
        username: device.id,
        password: device.secret,
        clean: false,
        reconnectPeriod: 500,
        connectTimeout: 10_000,
        will: {
          topic: topic('state'),
          payload: JSON.stringify({ v: 1, deviceId: device.id, online: false, ts: now() }),
          qos: 1,
          retain: true,
        },
      })
      const publishState = () =>
        client.publishAsync(
          topic('state'),
          JSON.stringify({
            v: 1,
            deviceId: device.id,
            online: true,
            ts: now(),
            profile: device.profile,
            agentVersion: 'sim',
            models: state.models.map((m) => ({
              name: m.name,
              version: m.version,
              precision: 'fp32',
              artifact: DIGEST,
              slot: 'a',
            })),
            network: state.conditions.network,
            power: state.conditions.power,
            idle: state.conditions.idle,
          }),
          { qos: 1, retain: true },
        )
      const event = (kind, cmd, extra = {}) =>
        client.publishAsync(
          topic('events'),
          JSON.stringify({
            v: 1,
            deviceId: device.id,
            ts: now(),
            kind,
            cmdId: cmd.id,
            deploymentId: cmd.deploymentId,
            ...extra,
          }),
          { qos: 1 },
        )
      client.on('message', async (_t, payload) => {
        let cmd
        try {
          cmd = JSON.parse(payload.toString())
        } catch {
          return
        }
        if (cmd.type === 'shadow') {
          // Shadow a candidate [EF-2.3.4]: acknowledged as staged/shadowing; telemetry then carries comparisons.
          state.shadow = { model: cmd.manifest.model, candidate: cmd.manifest.version }
          shadows.push({ deviceId: device.id, version: cmd.manifest.version, at: now() })
          await event('staged', cmd, { model: cmd.manifest.model, version: cmd.manifest.version, message: 'shadowing' })
          return
        }
        if (cmd.type === 'discard') {
          state.shadow = undefined
          await event('staged', cmd, { model: cmd.model, message: 'discarded' })
          return
        }
        if (cmd.type !== 'deploy') return
        const { model, version } = cmd.manifest
        deploys.push({ deviceId: device.id, model, version, rollback: cmd.rollback === true, at: now() })
        await event('received', cmd, { model, version })
        if (!autoActivate) return
        const prev = state.models.find((m) => m.name === model)
        state.models = [...state.models.filter((m) => m.name !== model), { name: model, version }]
        await event(cmd.rollback && prev ? 'activated' : 'activated', cmd, { model, version })
        await publishState()
      })
      client.once('connect', async () => {
        await client.subscribeAsync(topic('cmd'), { qos: 1 })
        await publishState()
        const sim = {
          id: device.id,
          state,
          client,
          publishState,
          async setConditions(c) {
            Object.assign(state.conditions, c)
            await publishState()
          },
          async sendTelemetry() {
            const to = now()
            const models = state.models.map((m) => {
              const traffic = behavior(m.version, device.id)
              const confidence =
                traffic.confidenceBin !== undefined
                  ? Object.assign(new Array(10).fill(0), { [traffic.confidenceBin]: traffic.requests })
                  : undefined
              return {
                model: m.name,
                version: m.version,
                requests: traffic.requests,
                errors: traffic.errors,
                latency: latencyCounts(traffic.latencyMs, traffic.requests),
                latencySumMs: traffic.latencyMs * traffic.requests,
                ...(confidence ? { confidence } : {}),
              }
            })
            const live = state.shadow && state.models.find((m) => m.name === state.shadow.model)
            let shadow
            if (live) {
              const traffic = behavior(state.shadow.candidate, device.id)
              const runs = traffic.requests
              shadow = [
                {
                  model: live.name,
                  version: live.version,
                  candidate: state.shadow.candidate,
                  runs,
                  skipped: 0,
                  errors: 0,
                  top1Agree: Math.round(runs * (traffic.agreement ?? 1)),
                  maxAbsDiff: 0,
                  cosineSum: runs,
                  latency: latencyCounts(traffic.latencyMs, runs),
                  latencySumMs: traffic.latencyMs * runs,
                },
              ]
            }
            await client.publishAsync(
              topic('telemetry'),
              JSON.stringify({
                v: 1,
                deviceId: device.id,
                batchId: randomUUID(),
                from: to - 1000,
                to,
                models,
                ...(shadow ? { shadow } : {}),
              }),
              { qos: 1 },
            )
          },
        }
        sims.set(device.id, sim)
        resolve(sim)
      })
      client.once('error', reject)
    })
  // Connect in slices: a thousand simultaneous CONNECTs would only measure the broker's accept queue.
  for (let i = 0; i < devices.length; i += 100) await Promise.all(devices.slice(i, i + 100).map(connectOne))
  return {
    sims,
    deploys,
    shadows,
    /** One telemetry batch from every device. */
    async telemetry() {
      await Promise.all([...sims.values()].map((s) => s.sendTelemetry()))
    },
    async close() {
      await Promise.all([...sims.values()].map((s) => s.client.endAsync(true)))
    },
  }
}
