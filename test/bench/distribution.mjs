#!/usr/bin/env node
// Distribution figures (issue: distribution):
//   A. a 20 MB artifact to N agents (default 200; a few processes, one MQTT
//      connection each): transfer wall time, beside a raw fan-out of the same
//      bytes through the same broker by a bare mqtt.js publisher and bare
//      mqtt.js subscribers, measured in the same run; hub/broker RSS.
//   B. 100 MB to one agent, MQTT path beside the HTTP path.
//   C. delta after a head-only change of a wake-word head.
// With --tls the hub serves MQTT over TLS and HTTPS (its generated CA) and every
// client (agents, raw subscribers and publisher) verifies it [EF-10]; run it
// beside a plain run (test/bench/tls.mjs does both) to read TLS's cost.
// Usage: node test/bench/distribution.mjs [--agents 200] [--procs 4] [--mb 20] [--big-mb 100] [--broker aedes|mosquitto] [--tls]
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { connectRawPublisher, publishWindowed } from './support/raw-fanout.mjs'
import { startHub, startAgent, api, waitFor, spawnJson, stopProcess, MODELS, ROOT } from '../support/fleet.mjs'
import { startMosquitto } from '../support/mosquitto.mjs'
import { matmulModel } from '../support/models.mjs'
import { benchArgs } from './support/args.mjs'

const { values: args, skip } = benchArgs(['agents', 'procs', 'mb', 'big-mb', 'broker'], { flags: ['tls'] })
const TLS = args.tls === true
const agentCount = Number(args.agents ?? 200)
const PROCS = Number(args.procs ?? 4)
const MB = Number(args.mb ?? 20)
const BIG_MB = Number(args['big-mb'] ?? 100)
const MiB = 1024 * 1024
const rssMiB = (pid) => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}
const sampler = (pids) => {
  const peak = Object.fromEntries(pids.map(([k]) => [k, 0]))
  const t = setInterval(() => {
    for (const [k, pid] of pids) peak[k] = Math.max(peak[k], rssMiB(pid))
  }, 50)
  return () => (clearInterval(t), peak)
}
const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))
const tmp = mkdtempSync(join(tmpdir(), 'ef-bench-dist-'))
const out = {
  machine: `${cpus().length} × ${cpus()[0].model}, node ${process.version}`,
  broker: args.broker ?? 'aedes',
  tls: TLS,
}
if (TLS && args.broker === 'mosquitto') throw new Error('--tls is measured on the embedded broker only')

// EF_BENCH_HUB_PROF=<dir>: the hub (only) writes a V8 CPU profile there when it stops.
const hubNodeArgs = process.env.EF_BENCH_HUB_PROF ? `--cpu-prof --cpu-prof-dir=${process.env.EF_BENCH_HUB_PROF}` : ''
let mosq
if (args.broker === 'mosquitto') mosq = await startMosquitto(join(tmp, 'mosquitto'))
const childNodeArgs = process.env.EF_CHILD_NODE_ARGS
if (hubNodeArgs) process.env.EF_CHILD_NODE_ARGS = [childNodeArgs, hubNodeArgs].filter(Boolean).join(' ')
const hub = await startHub({
  dataDir: join(tmp, 'hub'),
  logLevel: 'info',
  extraArgs: mosq
    ? ['--broker', mosq.url, '--mosquitto-dir', mosq.dir, '--mosquitto-pid-file', mosq.pidFile]
    : TLS
      ? ['--tls', '--mqtts-port', '0']
      : [],
})
if (childNodeArgs === undefined) delete process.env.EF_CHILD_NODE_ARGS
else process.env.EF_CHILD_NODE_ARGS = childNodeArgs
// With TLS every client trusts the hub's CA, and only it.
const caOpts = TLS ? { ca: readFileSync(hub.caFile) } : {}
const caArgs = TLS ? ['--ca', hub.caFile] : []
const keys = JSON.parse(readFileSync(join(tmp, 'hub', 'hub-keys.json'), 'utf8'))
const pools = []
try {
  // ---------------------------------------------------------------- A: fan-out
  if (!skip.has('fanout')) {
    const specs = []
    for (let i = 0; i < agentCount; i++) {
      const id = `sim-${String(i).padStart(4, '0')}`
      const d = await api(hub.httpUrl, 'POST', '/api/v1/devices', {
        id,
        profile: 'industrial-x86',
        tags: { bench: 'fanout' },
      })
      specs.push({ deviceId: id, secret: d.secret, profile: 'industrial-x86', dataDir: join(tmp, 'agents', id) })
    }
    const model = await matmulModel(MB * 1e6, 11)
    const reg = await api(hub.httpUrl, 'POST', `/api/v1/models?name=fan&version=1.0.0&options=${FP32}`, model)
    const size = reg.builds[0].sizeBytes
    const chunks = (await api(hub.httpUrl, 'GET', `/api/v1/models/fan/versions/1.0.0`)).builds[0]
    void chunks

    // Raw fan-out first, through the same broker: bare mqtt.js subscribers (device
    // credentials, one connection each) and one bare publisher with the hub's credentials.
    const chunkSize = 256 * 1024
    const payloads = []
    for (let off = 0; off < model.length; off += chunkSize)
      payloads.push(Buffer.from(model.subarray(off, off + chunkSize)))
    const rawTopic = (n) => `ef/v1/art/${'f'.repeat(64)}/${n}`
    const subs = await Promise.all(
      specs.map(
        (s) =>
          new Promise((resolve, reject) => {
            const client = mqtt.connect(mosq?.url ?? hub.mqttUrl, {
              clientId: s.deviceId,
              username: s.deviceId,
              password: s.secret,
              clean: true,
              reconnectPeriod: 0,
              ...caOpts,
            })
            client.once('connect', async () => {
              await client.subscribeAsync(`ef/v1/art/${'f'.repeat(64)}/+`, { qos: 1 })
              resolve(client)
            })
            client.once('error', reject)
          }),
      ),
    )
    let doneSubs = 0
    const allRaw = new Promise((resolve) => {
      for (const c of subs) {
        let got = 0
        c.on('message', () => {
          if (++got === payloads.length && ++doneSubs === subs.length) resolve()
        })
      }
    })
    const pub = await connectRawPublisher({
      mqttUrl: hub.mqttUrl,
      hubSecret: keys.hubSecret,
      mosq,
      connectOpts: caOpts,
    })
    const stopRawRss = sampler([['hub', hub.proc.pid], ...(mosq ? [['mosquitto', mosq.proc.pid]] : [])])
    const t0 = performance.now()
    await publishWindowed(pub, payloads, rawTopic)
    await allRaw
    const rawMs = performance.now() - t0
    const rawPeak = stopRawRss()
    await Promise.all(subs.map((c) => c.endAsync()))
    await pub.endAsync()

    // Real agents, a few processes, one connection each.
    const per = Math.ceil(agentCount / PROCS)
    for (let p = 0; p < PROCS; p++) {
      const file = join(tmp, `pool-${p}.json`)
      writeFileSync(file, JSON.stringify(specs.slice(p * per, (p + 1) * per)))
      pools.push(
        (
          await spawnJson(
            join(ROOT, 'test', 'bench', 'support', 'agent-pool.mjs'),
            [mosq?.url ?? hub.mqttUrl, hub.publicKey, file, 'mqtt', ...(TLS ? [hub.caFile] : [])],
            'ready',
            { timeoutMs: 120_000 },
          )
        ).proc,
      )
    }
    await waitFor(
      async () =>
        (await api(hub.httpUrl, 'GET', '/api/v1/devices?limit=10000')).items.filter((d) => d.online).length >=
        agentCount,
      { timeoutMs: 120_000, what: 'agents online' },
    )
    const before = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution
    const stopRss = sampler([
      ['hub', hub.proc.pid],
      ...(mosq ? [['mosquitto', mosq.proc.pid]] : []),
      ...pools.map((p, i) => [`pool${i}`, p.pid]),
    ])
    const t1 = performance.now()
    const wall0 = Date.now()
    const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'fan',
      version: '1.0.0',
      target: 'tag=bench=fanout',
    })
    const rank = new Set(['downloaded', 'verified', 'staged', 'activated'])
    let downloadedMs
    const final = await waitFor(
      async () => {
        const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)
        if (downloadedMs === undefined && v.devices.every((d) => rank.has(d.state)))
          downloadedMs = performance.now() - t1
        return v.deployment.done ? v : undefined
      },
      // Polled gently: the transfer's end is read from the agents' own `downloaded` timestamps below,
      // and a poll of 200 devices every 50 ms took hub CPU from the fan-out being measured.
      { timeoutMs: 600_000, intervalMs: 250, what: 'fan-out deployment' },
    )
    const activatedMs = performance.now() - t1
    const peak = stopRss()
    const after = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution
    // Precise transfer end: the latest `downloaded` event timestamp (same machine clock).
    let lastDownloaded = 0
    let maxReceived = 0
    const recvTs = []
    for (const s of specs) {
      const evs = (await api(hub.httpUrl, 'GET', `/api/v1/devices/${s.deviceId}`)).events
      if (process.env.EF_BENCH_TRACE && s === specs[0])
        console.error(
          evs
            .filter((e) => e.deploymentId === dep.deployment.id)
            .map((e) => `${e.kind}@${e.ts - wall0}${e.bytes ? ':' + e.bytes : ''}`)
            .reverse()
            .join(' '),
        )
      const rc = evs.find((e) => e.kind === 'received' && e.deploymentId === dep.deployment.id)
      if (rc) recvTs.push(rc.ts - wall0)
      const ev = evs.find((e) => e.kind === 'downloaded' && e.deploymentId === dep.deployment.id)
      if (ev) {
        lastDownloaded = Math.max(lastDownloaded, ev.ts)
        maxReceived = Math.max(maxReceived, ev.receivedBytes ?? 0)
      }
    }
    const transferMs = lastDownloaded - wall0
    out.fanout = {
      agents: agentCount,
      processes: PROCS,
      artifactMiB: size / MiB,
      rawFanoutMs: Math.round(rawMs),
      edgefleetTransferMs: transferMs,
      ratio: Math.round((transferMs / rawMs) * 100) / 100,
      edgefleetPolledDownloadedMs: Math.round(downloadedMs ?? NaN),
      commandReceivedMs: { first: Math.min(...recvTs), last: Math.max(...recvTs) },
      edgefleetActivatedMs: Math.round(activatedMs),
      states: final.deployment.counts,
      hubBroadcastMiB: (after.broadcastBytes - before.broadcastBytes) / MiB,
      hubRepairMiB: (after.repairBytes - before.repairBytes) / MiB,
      // Target (issue 12): repairs < 10 % of the bytes the agents had to receive.
      repairShare: Math.round(((after.repairBytes - before.repairBytes) / (agentCount * size)) * 1000) / 1000,
      maxReceivedByOneAgentMiB: maxReceived / MiB,
      peakRssMiB: peak,
      rawPeakRssMiB: rawPeak,
    }
    console.error(JSON.stringify(out.fanout))
    console.error(
      `fan-out ratio ${out.fanout.ratio}× raw (${transferMs} / ${Math.round(rawMs)} ms), repairs ${out.fanout.hubRepairMiB.toFixed(1)} MiB = ${(100 * out.fanout.repairShare).toFixed(1)} % of delivered`,
    )
    if (process.env.EF_BENCH_TRACE)
      console.error(
        hub
          .stderr()
          .split('\n')
          .filter((l) => l.includes('broadcast'))
          .map((l) => {
            const j = JSON.parse(l)
            return `${j.msg} @${j.time - wall0} receivers ${j.receivers} chunks ${j.chunks}`
          })
          .join('\n'),
      )
    if (process.env.EF_BENCH_HUB_LOG) writeFileSync(process.env.EF_BENCH_HUB_LOG, hub.stderr())
    await Promise.all(pools.splice(0).map((p) => stopProcess(p, 20_000)))
  }

  // ------------------------------------------------------- B: 100 MB, MQTT vs HTTP
  if (!skip.has('big')) {
    const big = await matmulModel(BIG_MB * 1e6, 12)
    // A device of the profile exists before registration, so the build happens then, not inside the timed deploy.
    await api(hub.httpUrl, 'POST', '/api/v1/devices', { id: 'big-profile-holder', profile: 'industrial-x86' }).catch(
      () => undefined,
    )
    await api(hub.httpUrl, 'POST', `/api/v1/models?name=big&version=1.0.0&options=${FP32}`, big)
    const res = {}
    for (const mode of ['mqtt', 'http']) {
      const id = `big-${mode}`
      const d = await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile: 'industrial-x86' })
      const agent = await startAgent({
        mqttUrl: mosq?.url ?? hub.mqttUrl,
        deviceId: id,
        secret: d.secret,
        hubKey: hub.publicKey,
        profile: 'industrial-x86',
        dataDir: join(tmp, id),
        extraArgs: ['--transfer', mode, ...caArgs],
      })
      await waitFor(async () => (await api(hub.httpUrl, 'GET', `/api/v1/devices/${id}`)).device.online, {
        what: 'online',
      })
      const wall0 = Date.now()
      const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
        model: 'big',
        version: '1.0.0',
        target: `device=${id}`,
      })
      await waitFor(
        async () => (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)).deployment.done,
        { timeoutMs: 300_000, intervalMs: 50, what: `${mode} deploy` },
      )
      const activated = Date.now() - wall0
      const evs = (await api(hub.httpUrl, 'GET', `/api/v1/devices/${id}`)).events
      const received = evs.find((e) => e.kind === 'received')
      const downloaded = evs.find((e) => e.kind === 'downloaded')
      res[mode] = {
        transferMs: downloaded.ts - received.ts,
        deployToDownloadedMs: downloaded.ts - wall0,
        deployToActivatedMs: activated,
        receivedMiB: (downloaded.receivedBytes ?? 0) / MiB,
      }
      await agent.stop()
    }
    out.big = { artifactMiB: (BIG_MB * 1e6) / MiB, ...res }
    console.error(JSON.stringify(out.big))
  }

  // --------------------------------------------------------------- C: delta
  if (!skip.has('delta')) {
    const { decodeModel, encodeModel } = await import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'proto.js'))
    const decoded = decodeModel(readFileSync(MODELS.wakeHello))
    const w = decoded.graph.initializer.find((t) => t.name === 'last_layer.weight')
    const f = new Float32Array(w.raw_data.length / 4).map((_, i) => Math.cos(i) * 0.1)
    w.raw_data = new Uint8Array(f.buffer)
    const changed = w.raw_data.length
    const d = await api(hub.httpUrl, 'POST', '/api/v1/devices', { id: 'delta-1', profile: 'industrial-x86' })
    const agent = await startAgent({
      mqttUrl: mosq?.url ?? hub.mqttUrl,
      deviceId: 'delta-1',
      secret: d.secret,
      hubKey: hub.publicKey,
      profile: 'industrial-x86',
      dataDir: join(tmp, 'delta-1'),
      extraArgs: caArgs,
    })
    await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=wake&version=1.0.0&options=${FP32}`,
      readFileSync(MODELS.wakeHello),
    )
    await api(hub.httpUrl, 'POST', `/api/v1/models?name=wake&version=1.1.0&options=${FP32}`, encodeModel(decoded))
    const run = async (version) => {
      const hubDistribution = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution
      const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
        model: 'wake',
        version,
        target: 'device=delta-1',
      })
      await waitFor(
        async () => (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)).deployment.done,
        { what: 'delta deploy' },
      )
      const a = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution
      return a.broadcastBytes + a.repairBytes - hubDistribution.broadcastBytes - hubDistribution.repairBytes
    }
    const full = await run('1.0.0')
    const moved = await run('1.1.0')
    out.delta = {
      model: 'hello_deepa (wake-word head)',
      changedTensor: 'last_layer.weight',
      changedBytes: changed,
      fullBytes: full,
      movedBytes: moved,
      ratio: moved / changed,
    }
    console.error(JSON.stringify(out.delta))
    await agent.stop()
  }
  console.log(JSON.stringify(out, null, 2))
} finally {
  await Promise.all(pools.map((p) => stopProcess(p, 20_000)))
  // A long grace: a hub started with EF_BENCH_HUB_PROF writes its profile on the way out.
  await stopProcess(hub.proc, 60_000)
  await mosq?.stop()
  rmSync(tmp, { recursive: true, force: true })
}
