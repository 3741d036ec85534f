// A throwaway 3-node NATS cluster (nats-server 2.9+ from apt) for tests of the
// clustered device broker [EF-4.12]: every node has an MQTT listener, JetStream
// (MQTT sessions, retained messages and QoS 1 deliveries live there) and a route
// to the other two, all on free loopback ports in a temp folder. Each node's
// config includes the authorization file the hub keeps (`auth.conf` in `authDir`),
// so the hub's reload (SIGHUP to every pid file) reaches all three.
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join, relative } from 'node:path'
import { freePort } from './mosquitto.mjs'

const NODE_NAMES = ['n1', 'n2', 'n3']

/** Until the hub writes it: one unusable user, so the nodes never start without authentication. */
function placeholderAuth(file) {
  if (existsSync(file)) return
  const password = randomBytes(24).toString('base64url')
  writeFileSync(file, `authorization {\n  users = [ { user: "placeholder", password: "${password}" } ]\n}\n`, {
    mode: 0o600,
  })
}

/**
 * For JetStream tests without the MQTT side [EF-9.13]: one NATS-protocol user with every permission
 * (the hub's stream client, and a training pipeline reading the feed). Returns its password.
 */
function streamUserAuth(file) {
  const password = randomBytes(24).toString('base64url')
  writeFileSync(file, `authorization {\n  users = [ { user: "stream", password: "${password}" } ]\n}\n`, {
    mode: 0o600,
  })
  return password
}

function nodeConfig(name, dir, authFile, ports, routes) {
  return [
    `server_name: ${name}`,
    `listen: 127.0.0.1:${ports.client}`,
    `http: 127.0.0.1:${ports.monitor}`,
    // Chunk messages (256 KiB + headers) and commands carrying manifests fit with room to spare.
    'max_payload: 4MB',
    `jetstream { store_dir: "${join(dir, 'js')}", max_memory_store: 256MB, max_file_store: 2GB }`,
    `cluster { name: edgefleet, listen: 127.0.0.1:${ports.route}, routes: [ ${routes.join(', ')} ] }`,
    // R3 for the MQTT streams (sessions, retained, QoS 1 messages): any one node may die.
    `mqtt { listen: 127.0.0.1:${ports.mqtt}, stream_replicas: 3 }`,
    // nats-server resolves an include relative to the including file, absolute paths too.
    `include "${relative(dir, authFile)}"`,
    '',
  ].join('\n')
}

async function getJson(url) {
  const res = await fetch(url)
  return { status: res.status, body: await res.json().catch(() => null) }
}

/** Resolves once the node answers /healthz with JetStream up (MQTT refuses connections before that). */
async function waitHealthy(node, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await getJson(`http://127.0.0.1:${node.ports.monitor}/healthz?js-enabled-only=true`)
      .then((r) => r.status === 200)
      .catch(() => false)
    if (ok) return
    if (node.proc.exitCode !== null) throw new Error(`nats-server ${node.name} exited:\n${node.stderr().slice(-2000)}`)
    if (Date.now() > deadline) throw new Error(`nats-server ${node.name} not healthy:\n${node.stderr().slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Resolves once every node knows the JetStream meta leader: before that, $JS.API requests go unanswered. */
async function waitMetaLeader(nodes, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const leaders = await Promise.all(
      nodes.map((n) =>
        getJson(`http://127.0.0.1:${n.ports.monitor}/jsz`)
          .then((r) => r.body?.meta_cluster?.leader)
          .catch(() => undefined),
      ),
    )
    if (leaders.every(Boolean)) return
    if (Date.now() > deadline) throw new Error(`no JetStream meta leader after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function spawnNode(node) {
  const proc = spawn('nats-server', ['-c', node.conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  proc.stderr.on('data', (c) => {
    err += c
    if (err.length > 1_000_000) err = err.slice(-500_000)
  })
  node.proc = proc
  node.stderr = () => err
  writeFileSync(node.pidFile, String(proc.pid))
}

function stopProc(proc, signal) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
    proc.once('exit', () => resolve())
    proc.kill(signal)
  })
}

/**
 * Starts three nodes in `dir` (one sub-folder each); the hub writes `authDir/auth.conf`.
 * With `streamUser`, auth.conf has one NATS user instead, and `streamUrl` is a `--stream` URL with its
 * credentials for the hub's JetStream client [EF-9.13] (`clientUrls`: the nodes' NATS URLs without them).
 * @returns the nodes (name, ports, mqttUrl, natsUrl, pidFile, kill9, restart), the MQTT URLs and stop().
 */
export async function startNatsCluster(dir, { authDir = dir, timeoutMs = 30_000, streamUser = false } = {}) {
  mkdirSync(authDir, { recursive: true })
  const authFile = join(authDir, 'auth.conf')
  const streamPassword = streamUser ? streamUserAuth(authFile) : undefined
  if (!streamUser) placeholderAuth(authFile)
  const nodes = []
  // freePort binds port 0 and closes it: the kernel may hand the same port out again, so keep them distinct.
  const taken = new Set()
  const distinctPort = async () => {
    for (;;) {
      const port = await freePort()
      if (!taken.has(port)) {
        taken.add(port)
        return port
      }
    }
  }
  for (const name of NODE_NAMES) {
    const ports = {
      client: await distinctPort(),
      monitor: await distinctPort(),
      route: await distinctPort(),
      mqtt: await distinctPort(),
    }
    nodes.push({ name, ports, dir: join(dir, name) })
  }
  for (const node of nodes) {
    mkdirSync(node.dir, { recursive: true })
    const routes = nodes.filter((n) => n !== node).map((n) => `nats-route://127.0.0.1:${n.ports.route}`)
    node.conf = join(node.dir, 'nats.conf')
    node.pidFile = join(node.dir, 'nats.pid')
    node.mqttUrl = `mqtt://127.0.0.1:${node.ports.mqtt}`
    node.natsUrl = `nats://127.0.0.1:${node.ports.client}`
    writeFileSync(node.conf, nodeConfig(node.name, node.dir, authFile, node.ports, routes))
    spawnNode(node)
    node.kill9 = () => stopProc(node.proc, 'SIGKILL')
    node.restart = async () => {
      spawnNode(node)
      await waitHealthy(node, timeoutMs)
      if (streamUser) await waitMetaLeader([node], timeoutMs)
    }
    /** MQTT clients connected to this node now (its /connz), by client id. */
    node.mqttClients = async () => {
      const { body } = await getJson(`http://127.0.0.1:${node.ports.monitor}/connz?limit=10000`)
      return (body?.connections ?? []).filter((c) => c.mqtt_client).map((c) => c.mqtt_client)
    }
  }
  await Promise.all(nodes.map((n) => waitHealthy(n, timeoutMs)))
  // The stream tests talk to JetStream's API at once; the MQTT tests wait on their own connections.
  if (streamUser) await waitMetaLeader(nodes, timeoutMs)
  const clientUrls = nodes.map((n) => n.natsUrl)
  return {
    nodes,
    clientUrls,
    ...(streamPassword
      ? {
          streamCredentials: { user: 'stream', pass: streamPassword },
          streamUrl: clientUrls.map((u, i) => (i === 0 ? u.replace('//', `//stream:${streamPassword}@`) : u)).join(','),
        }
      : {}),
    authDir,
    authFile,
    urls: nodes.map((n) => n.mqttUrl),
    pidFiles: nodes.map((n) => n.pidFile),
    stderr: () => nodes.map((n) => `--- ${n.name}\n${n.stderr().slice(-4000)}`).join('\n'),
    stop: () => Promise.all(nodes.map((n) => stopProc(n.proc, 'SIGTERM'))),
  }
}
