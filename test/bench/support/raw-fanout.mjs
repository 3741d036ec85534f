// The raw fan-out baseline the distribution benchmarks compare against: a bare
// mqtt.js publisher through the same broker as the hub's broadcast, and a
// QoS 1 publish loop with a window of unacknowledged messages.
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { ROOT } from '../../support/fleet.mjs'

/**
 * Connects the raw publisher: the hub's credentials on the embedded broker; with Mosquitto (whose client
 * id is the user name) a user of its own, added after provisioning (which rewrites the files), so it does
 * not take over the hub's session. `connectOpts` adds e.g. TLS options.
 */
export async function connectRawPublisher({ mqttUrl, hubSecret, mosq, connectOpts = {} }) {
  let username = '$hub'
  let password = hubSecret
  if (mosq) {
    const { mosquittoHash } = await import(join(ROOT, 'hub', 'dist', 'broker', 'mosquitto.js'))
    username = 'bench-raw'
    password = 'bench-raw-secret'
    appendFileSync(join(mosq.dir, 'passwd'), `${username}:${mosquittoHash(password)}\n`)
    appendFileSync(join(mosq.dir, 'acl'), `\nuser ${username}\ntopic readwrite ef/v1/art/#\n`)
    mosq.proc.kill('SIGHUP')
    await new Promise((r) => setTimeout(r, 500))
  }
  const pub = mqtt.connect(mosq?.url ?? mqttUrl, {
    clientId: 'bench-raw-publisher',
    username,
    password,
    reconnectPeriod: 0,
    ...connectOpts,
  })
  await new Promise((resolve, reject) => pub.once('connect', resolve).once('error', reject))
  return pub
}

/** Publishes `payloads` on `topicOf(i)`, QoS 1, with at most `window` unacknowledged (a careful publisher). */
export function publishWindowed(pub, payloads, topicOf, window = 16) {
  let next = 0
  let inflight = 0
  return new Promise((resolve) => {
    const pump = () => {
      while (inflight < window && next < payloads.length) {
        inflight++
        pub.publish(topicOf(next), payloads[next++], { qos: 1 }, () => {
          inflight--
          if (next === payloads.length && inflight === 0) resolve()
          else pump()
        })
      }
    }
    pump()
  })
}
