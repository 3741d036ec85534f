// Starts real hub and agent processes on loopback for end-to-end tests, the
// demo and benchmarks. Plain ESM so the demo runs without a TypeScript step.
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { createServer, connect } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const HUB_CLI = join(ROOT, 'hub', 'dist', 'cli', 'edgefleet.js')
/**
 * The agent as devices run it: the bundle agent/dist/edgefleet-agent.mjs,
 * re-bundled first when tsc output in agent/dist or shared/dist is newer, so a
 * bare `tsc -b` never leaves e2e tests running a stale bundle. Falls back to
 * the unbundled dist/cli.js when bundling fails (say, rolldown not installed).
 */
const AGENT_CLI = agentEntry()

function agentEntry() {
  const dist = join(ROOT, 'agent', 'dist')
  const bundle = join(dist, 'edgefleet-agent.mjs')
  const newest = (dir) => {
    let t = 0
    if (!existsSync(dir)) return t
    for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (e.isFile() && e.name.endsWith('.js')) t = Math.max(t, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs)
    }
    return t
  }
  try {
    if (
      !existsSync(bundle) ||
      statSync(bundle).mtimeMs < Math.max(newest(dist), newest(join(ROOT, 'shared', 'dist')))
    ) {
      execFileSync(process.execPath, [join(ROOT, 'agent', 'scripts', 'bundle.mjs')], {
        stdio: ['ignore', 'ignore', 'inherit'],
      })
    }
    return bundle
  } catch (err) {
    process.stderr.write(`agent bundle unavailable (${err.message.split('\n')[0]}); using dist/cli.js\n`)
    return join(dist, 'cli.js')
  }
}
export const MODELS = {
  wakeHello: join(ROOT, 'node_modules', 'openwakeword-js', 'models', 'hello_deepa.onnx'),
  wakeNamaste: join(ROOT, 'node_modules', 'openwakeword-js', 'models', 'namaste_deepa.onnx'),
}

/**
 * Spawns `node script args` and resolves with the first stdout line that
 * parses as JSON with `key` (the process's "I am up" line).
 * @returns {Promise<{ proc: import('node:child_process').ChildProcess, info: any, stderr: () => string }>}
 */
export function spawnJson(script, args, key, { env = {}, timeoutMs = 30_000, stdio } = {}) {
  const proc = spawn(
    process.execPath,
    [...(process.env.EF_CHILD_NODE_ARGS ? process.env.EF_CHILD_NODE_ARGS.split(' ') : []), script, ...args],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let err = ''
  proc.stderr.on('data', (c) => {
    err += c
    if (err.length > 2_000_000) err = err.slice(-1_000_000)
    if (stdio === 'inherit') process.stderr.write(c)
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`${script} did not start in ${timeoutMs} ms\n${err.slice(-4000)}`))
    }, timeoutMs)
    const rl = createInterface({ input: proc.stdout })
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line)
        if (j && key in j) {
          clearTimeout(timer)
          resolve({ proc, info: j, stderr: () => err })
        }
      } catch {
        /* not our line */
      }
    })
    proc.once('exit', (code, sig) => {
      clearTimeout(timer)
      reject(new Error(`${script} exited (${code ?? sig}) before starting\n${err.slice(-4000)}`))
    })
  })
}

/** Stops a child: SIGTERM, then SIGKILL after graceMs. Resolves on exit. */
export function stopProcess(proc, graceMs = 5000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), graceMs)
    proc.once('exit', () => {
      clearTimeout(t)
      resolve()
    })
    proc.kill('SIGTERM')
  })
}

/**
 * API tokens of the hubs this process started, by base URL [EF-8.10]: api()
 * and cli() send the right one, so tests written before tokens keep working.
 */
const tokens = new Map()
let lastToken

/** CA files of TLS hubs this process started, by origin [EF-10]: api() trusts them, cli() passes EDGEFLEET_CA. */
const cas = new Map()

/** Remembers the CA file for a hub URL (startHub does this itself for a TLS hub). */
function setCa(baseUrl, caFile) {
  cas.set(new URL(baseUrl).origin, caFile)
}

function caFor(baseUrl) {
  try {
    return cas.get(new URL(baseUrl).origin)
  } catch {
    return undefined
  }
}

/** A fetch-like request over https trusting `caFile` (node's fetch takes no CA of its own). */
function httpsFetch(url, { method, headers, body }, caFile) {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, headers, ca: readFileSync(caFile) }, (res) => {
      const parts = []
      res.on('data', (c) => parts.push(c))
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8')
        resolve({ ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, text: async () => text })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Remembers the token for a hub URL (startHub does this itself). */
function setToken(baseUrl, token) {
  tokens.set(new URL(baseUrl).origin, token)
  lastToken = token
}

/** The token api() would send to baseUrl. */
function tokenFor(baseUrl) {
  try {
    return tokens.get(new URL(baseUrl).origin)
  } catch {
    return undefined
  }
}

/**
 * A real `edgefleet hub start` process. Plain deploys go out at once (`--immediate-deploys`) unless
 * `windows` is true: the repository's profiles have night-time maintenance windows [EF-8.16], and a
 * test's outcome must not depend on the hour it runs at. Window tests pass `windows: true`.
 */
export async function startHub({
  dataDir,
  logLevel = 'warn',
  env,
  stdio,
  extraArgs = [],
  mqttPort = 0,
  httpPort = 0,
  timeoutMs,
  windows = false,
}) {
  const args = [
    'hub',
    'start',
    '--data',
    dataDir,
    '--mqtt-port',
    String(mqttPort),
    '--http-port',
    String(httpPort),
    '--json',
    '--log-level',
    logLevel,
    ...(windows ? [] : ['--immediate-deploys']),
    ...extraArgs,
  ]
  const { proc, info, stderr } = await spawnJson(HUB_CLI, args, 'httpUrl', { env, stdio, timeoutMs })
  if (info.adminToken) setToken(info.httpUrl, info.adminToken)
  if (info.caFile) setCa(info.httpUrl, info.caFile)
  return { proc, ...info, token: info.adminToken, stderr, stop: () => stopProcess(proc) }
}

export async function startAgent({
  mqttUrl,
  deviceId,
  secret,
  hubKey,
  profile,
  dataDir,
  telemetryMs = 1000,
  logLevel = 'warn',
  env,
  stdio,
  extraArgs = [],
  timeoutMs,
}) {
  const args = [
    '--hub',
    mqttUrl,
    '--device-id',
    deviceId,
    `--secret=${secret}`,
    `--hub-key=${hubKey}`,
    '--profile',
    profile,
    '--data',
    dataDir,
    '--api-port',
    '0',
    '--telemetry-ms',
    String(telemetryMs),
    '--log-level',
    logLevel,
    '--json',
    ...extraArgs,
  ]
  const { proc, info, stderr } = await spawnJson(AGENT_CLI, args, 'apiPort', { env, stdio, timeoutMs })
  return { proc, ...info, stderr, stop: () => stopProcess(proc), kill9: () => proc.kill('SIGKILL') }
}

/** JSON over HTTP; throws with the error body on non-2xx. */
export async function api(baseUrl, method, path, body, headers = {}) {
  const token = tokenFor(baseUrl)
  if (token && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization'))
    headers = { authorization: `Bearer ${token}`, ...headers }
  const isBuf = body instanceof Uint8Array
  const url = new URL(path, baseUrl)
  const ca = url.protocol === 'https:' ? caFor(baseUrl) : undefined
  const res = await (ca ? (u, init) => httpsFetch(u, init, ca) : fetch)(url, {
    method,
    headers:
      body === undefined
        ? headers
        : { 'content-type': isBuf ? 'application/octet-stream' : 'application/json', ...headers },
    body: body === undefined ? undefined : isBuf ? body : JSON.stringify(body),
  })
  const text = await res.text()
  const json = text ? JSON.parse(text) : undefined
  if (!res.ok) {
    const e = new Error(`${method} ${path} → ${res.status} ${text}`)
    e.status = res.status
    e.body = json
    throw e
  }
  return json
}

/** Runs the edgefleet CLI to completion, with the token of the hub named by --hub (else the last hub started). */
export function cli(args, env = {}) {
  const i = args.indexOf('--hub')
  const token = (i >= 0 ? tokenFor(args[i + 1]) : undefined) ?? lastToken
  const ca = i >= 0 ? caFor(args[i + 1]) : undefined
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [HUB_CLI, ...args], {
      env: {
        ...process.env,
        ...(token ? { EDGEFLEET_TOKEN: token } : {}),
        ...(ca ? { EDGEFLEET_CA: ca } : {}),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (c) => (out += c))
    child.stderr.on('data', (c) => (err += c))
    child.on('exit', (code) => resolve({ code, out, err }))
  })
}

export async function waitFor(fn, { timeoutMs = 30_000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      last = await fn()
      if (last) return last
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
      )
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** Deterministic input for the wake-word heads ([1,25,96] float32). */
export function wakeInput(seed = 1) {
  let a = seed >>> 0
  const data = new Array(25 * 96)
  for (let i = 0; i < data.length; i++) {
    a = (a * 1664525 + 1013904223) >>> 0
    data[i] = (a / 4294967296) * 2 - 1
  }
  return { 'onnx::Flatten_0': { type: 'float32', dims: [1, 25, 96], data } }
}

/** Provisions device `id` on the hub; returns its secret. */
export async function provision(hub, { id, profile, tags }) {
  return (await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile, ...(tags ? { tags } : {}) })).secret
}

/** Starts the agent of a provisioned device against `hub` (its broker unless `mqttUrl` says otherwise). */
export function startDevice(hub, { id, mqttUrl, ...agentOptions }) {
  return startAgent({ mqttUrl: mqttUrl ?? hub.mqttUrl, deviceId: id, hubKey: hub.publicKey, ...agentOptions })
}

/** Whether the hub's last state of device `id` says online. */
export async function isOnline(hub, id) {
  return (await api(hub.httpUrl, 'GET', `/api/v1/devices/${id}`)).device.online
}

/** Waits until the hub sees device `id` online. */
export function waitOnline(hub, id, { timeoutMs } = {}) {
  return waitFor(() => isOnline(hub, id), { timeoutMs, what: `${id} online` })
}

/** Waits until the hub sees every provisioned device online. */
export function waitAllOnline(hub, { timeoutMs } = {}) {
  return waitFor(async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices')).items.every((d) => d.online), {
    timeoutMs,
    what: 'agents online',
  })
}

/** Provisions `n` devices and starts an agent process for each. */
export async function startFleet(hub, specs, { tmp, telemetryMs = 1000, healthMs, stdio, logLevel = 'warn', mqttUrl }) {
  const agents = []
  for (const spec of specs) agents.push({ ...spec, secret: await provision(hub, { ...spec, tags: spec.tags ?? {} }) })
  return Promise.all(
    agents.map(async (spec) => {
      const agent = await startDevice(hub, {
        id: spec.id,
        mqttUrl: spec.mqttUrl ?? mqttUrl,
        secret: spec.secret,
        profile: spec.profile,
        dataDir: join(tmp, spec.id),
        telemetryMs: spec.telemetryMs ?? telemetryMs,
        env: spec.env,
        stdio,
        logLevel,
        // A TLS hub: agents get only its CA [EF-10.4]; a spec may add arguments (e.g. --transfer http).
        extraArgs: [
          ...(hub.caFile ? ['--ca', hub.caFile] : []),
          ...(healthMs !== undefined ? ['--health-ms', String(healthMs)] : []),
          ...(spec.args ?? []),
        ],
      })
      return { ...spec, ...agent, url: `http://127.0.0.1:${agent.apiPort}` }
    }),
  )
}

/**
 * A TCP proxy on 127.0.0.1 in front of `targetUrl` (e.g. the hub's broker) so
 * a test can take a device offline without stopping either process: cut()
 * resets every connection and refuses new ones until restore().
 */
export async function startTcpProxy(targetUrl) {
  const target = new URL(targetUrl)
  const pairs = new Set()
  let up = true
  let stalled = false
  const server = createServer((client) => {
    if (!up) return client.destroy()
    const upstream = connect(Number(target.port), target.hostname)
    const pair = [client, upstream]
    pairs.add(pair)
    const done = () => {
      client.destroy()
      upstream.destroy()
      pairs.delete(pair)
    }
    for (const s of pair) {
      s.on('error', done)
      s.on('close', done)
    }
    client.pipe(upstream)
    upstream.pipe(client)
    if (stalled) for (const sock of pair) sock.pause()
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = server.address().port
  return {
    url: `${target.protocol}//127.0.0.1:${port}`,
    port,
    get connections() {
      return pairs.size
    },
    cut() {
      up = false
      for (const [a, b] of pairs) {
        a.resetAndDestroy?.() ?? a.destroy()
        b.destroy()
      }
      pairs.clear()
    },
    restore() {
      up = true
    },
    /** Stalls every connection (bytes held, nothing closed) until stall(false): a link that hangs rather than drops. */
    stall(on) {
      stalled = on
      for (const pair of pairs) for (const sock of pair) on ? sock.pause() : sock.resume()
    },
    close() {
      this.cut()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
