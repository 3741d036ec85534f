// One simulated device speaking the real protocol over its own MQTT 3.1.1
// connection, with packets encoded by mqtt-packet (the encoder mqtt.js uses)
// and telemetry pre-encoded and patched per batch, so thousands fit in one
// process. It connects with its provisioned identity and a retained offline
// will [EF-2.1], publishes its retained state, sends telemetry batches at its
// rate (QoS 1, resent after a reconnect until acknowledged: the hub stores a
// batch id once [EF-2.6]), answers a deploy by joining the broadcast,
// checking every chunk's sha256 and acknowledging progress as the agent does
// [EF-2.7, EF-4.3] (bytes counted, not stored), reports the deploy events
// [EF-2.4], and reconnects with exponential back-off and full jitter.
import { connect } from 'node:net'
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { telemetryTemplate } from './telemetry.mjs'

const require = createRequire(createRequire(import.meta.url).resolve('mqtt'))
const mqttPacket = require('mqtt-packet')

const ACK_EVERY = 4 // broadcast chunks per `ack`, as the agent
const STALL_MS = 15_000 // ask for repairs after this long without a chunk, as the agent
const REPAIR_WINDOW = 64
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000
const BACKOFF_MIN_MS = 500
const BACKOFF_MAX_MS = 30_000

const sha256 = (b) => createHash('sha256').update(b).digest('hex')

export class SimDevice {
  /**
   * @param {{id: string, secret: string, profile: string, models: {name: string, version: string, latencyMs: number}[], seed: number}} spec
   * @param {{url: URL, rate: number, stats: Record<string, number>, onConnected?: (d: SimDevice, ms: number) => void}} ctx
   */
  constructor(spec, ctx) {
    Object.assign(this, { spec, ctx })
    this.models = spec.models.map((m) => ({ ...m, precision: 'fp32', artifact: 'a'.repeat(64), slot: 'a' }))
    this.tpl = telemetryTemplate(spec.id, spec.models, spec.seed)
    this.seq = 0
    this.nextId = 1
    /** QoS 1 publishes awaiting PUBACK: messageId → {kind, packet}. Telemetry is resent after a reconnect. */
    this.inflight = new Map()
    this.attempt = 0
    this.stopped = false
    this.connected = false
    this.download = undefined
  }

  start(delayMs = 0) {
    this.reconnectTimer = setTimeout(() => this.connect(), delayMs)
  }

  stop() {
    this.stopped = true
    clearTimeout(this.reconnectTimer)
    clearInterval(this.telemetryTimer)
    this.socket?.destroy()
  }

  /** Drops the connection as a network failure would (the broker publishes the will). */
  drop() {
    this.socket?.destroy()
  }

  connect() {
    const { url, stats } = this.ctx
    const id = this.spec.id
    const began = performance.now()
    stats.connecting++
    this.pending = true
    const socket = connect({ host: url.hostname, port: Number(url.port || 1883), noDelay: true })
    this.socket = socket
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (p) => this.onPacket(p, began))
    parser.on('error', () => socket.destroy())
    socket.on('data', (d) => parser.parse(d))
    socket.on('error', () => undefined)
    socket.on('close', () => this.onClose())
    socket.on('connect', () =>
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId: id,
          keepalive: 0,
          username: id,
          password: Buffer.from(this.spec.secret),
          will: {
            topic: `ef/v1/dev/${id}/state`,
            payload: Buffer.from(JSON.stringify({ v: 1, deviceId: id, online: false, ts: Date.now() })),
            qos: 1,
            retain: true,
          },
        }),
      ),
    )
  }

  onClose() {
    const { stats } = this.ctx
    if (this.pending) {
      // Closed before any CONNACK: the broker shed load (EF-1.7.3) or the hub is down; not a refusal.
      stats.connecting--
      stats.closedBeforeConnack++
    }
    this.pending = false
    clearInterval(this.telemetryTimer)
    if (this.connected) {
      stats.connected--
      stats.disconnects++
    }
    this.connected = false
    if (this.stopped) return
    // Full jitter: a fleet dropped at once does not come back at once.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempt++, 10))
    this.reconnectTimer = setTimeout(() => this.connect(), Math.random() * cap)
  }

  onPacket(packet, began) {
    const { stats } = this.ctx
    if (packet.cmd === 'connack') {
      stats.connecting--
      this.pending = false
      if (packet.returnCode !== 0) {
        stats[`refused${packet.returnCode}`] = (stats[`refused${packet.returnCode}`] ?? 0) + 1
        this.socket.destroy()
        return
      }
      this.onConnected(performance.now() - began)
    } else if (packet.cmd === 'puback') this.onPuback(packet.messageId)
    else if (packet.cmd === 'publish') {
      if (packet.qos === 1) this.socket.write(mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId }))
      this.onPublish(packet.topic, packet.payload)
    }
  }

  onConnected(ms) {
    const { stats, rate } = this.ctx
    const id = this.spec.id
    this.connected = true
    this.attempt = 0
    stats.connected++
    stats.connects++
    this.ctx.onConnected?.(this, ms)
    this.send({
      cmd: 'subscribe',
      messageId: this.msgId(),
      subscriptions: [
        { topic: `ef/v1/dev/${id}/cmd`, qos: 1 },
        { topic: `ef/v1/dev/${id}/chunk/#`, qos: 1 },
      ],
    })
    // Telemetry not yet acknowledged before the drop goes again (the hub keeps a batch id once); the rest is state.
    const unacked = [...this.inflight.values()].filter((f) => f.kind === 'telemetry')
    this.inflight.clear()
    this.publishState()
    for (const f of unacked) this.publishRaw(f.packet, 'telemetry', true)
    if (this.download) this.joinDownload()
    if (rate > 0) {
      const everyMs = 1000 / rate
      // First batch at a random point of the period, so devices do not report in lockstep.
      this.telemetryTimer = setTimeout(() => {
        this.sendTelemetry()
        this.telemetryTimer = setInterval(() => this.sendTelemetry(), everyMs)
      }, Math.random() * everyMs)
    }
  }

  msgId() {
    const m = this.nextId
    this.nextId = m === 65535 ? 1 : m + 1
    return m
  }

  send(packet) {
    if (this.connected) this.socket.write(mqttPacket.generate(packet))
  }

  /** A QoS 1 publish, remembered until its PUBACK. */
  publish(topic, payload, kind, retain = false) {
    if (!this.connected) return
    const packet = mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 1, messageId: 1, retain, dup: false })
    this.publishRaw(packet, kind)
  }

  /** Writes an encoded QoS 1 PUBLISH under a fresh packet id (bytes 2+ hold topic then id). */
  publishRaw(packet, kind, resend = false) {
    const mid = this.msgId()
    if (resend) packet[0] |= 0x08 // DUP
    const topicLen = packet.readUInt16BE(this.headerLen(packet))
    packet.writeUInt16BE(mid, this.headerLen(packet) + 2 + topicLen)
    this.inflight.set(mid, { kind, packet })
    if (resend) this.ctx.stats[`${kind}Resent`] = (this.ctx.stats[`${kind}Resent`] ?? 0) + 1
    else this.ctx.stats[`${kind}Sent`]++
    this.socket.write(packet)
  }

  /** Length of the fixed header: one byte of type and flags, then 1-4 bytes of remaining length. */
  headerLen(packet) {
    let i = 1
    while (packet[i] & 0x80) i++
    return i + 1
  }

  onPuback(mid) {
    const f = this.inflight.get(mid)
    if (!f) return
    this.inflight.delete(mid)
    this.ctx.stats[`${f.kind}Acked`]++
  }

  sendTelemetry() {
    if (!this.connected) return
    const id = this.spec.id
    const payload = Buffer.from(this.tpl.payload)
    this.tpl.patch(payload, this.seq++, Date.now(), 1000 / this.ctx.rate)
    this.ctx.stats.eventsSent += this.tpl.events
    this.publish(`ef/v1/dev/${id}/telemetry`, payload, 'telemetry')
  }

  publishState() {
    const id = this.spec.id
    const state = {
      v: 1,
      deviceId: id,
      online: true,
      ts: Date.now(),
      profile: this.spec.profile,
      agentVersion: 'sim-1',
      models: this.models.map(({ name, version, precision, artifact, slot, previous }) => ({
        name,
        version,
        precision,
        artifact,
        slot,
        ...(previous ? { previous } : {}),
      })),
      freeStorageBytes: 1 << 30,
      network: 'unmetered',
      power: 'charging',
      idle: true,
    }
    this.publish(`ef/v1/dev/${id}/state`, Buffer.from(JSON.stringify(state)), 'state', true)
  }

  event(kind, cmd, extra = {}) {
    const id = this.spec.id
    const ev = { v: 1, deviceId: id, ts: Date.now(), kind, cmdId: cmd.id, ...extra }
    if (cmd.deploymentId) ev.deploymentId = cmd.deploymentId
    this.publish(`ef/v1/dev/${id}/events`, Buffer.from(JSON.stringify(ev)), 'event')
  }

  fetch(body) {
    const id = this.spec.id
    this.publish(`ef/v1/dev/${id}/fetch`, Buffer.from(JSON.stringify({ v: 1, deviceId: id, ...body })), 'fetch')
  }

  /**
   * Subscribes to a raw fan-out topic filter (benchmarks: the same bytes a broadcast moves, sent by a
   * bare publisher through the same broker); its messages are counted, never read as chunks.
   */
  rawSubscribe(filter) {
    this.rawFilter = filter
    this.send({ cmd: 'subscribe', messageId: this.msgId(), subscriptions: [{ topic: filter, qos: 0 }] })
  }

  onPublish(topic, payload) {
    if (this.rawFilter && topic.startsWith(this.rawFilter.slice(0, -1))) {
      this.ctx.stats.rawMessages++
      this.ctx.stats.rawBytes += payload.length
      return
    }
    const parts = topic.split('/')
    if (parts[2] === 'art') return this.onChunk(parts[3], Number(parts[4]), payload, true)
    if (parts[4] === 'chunk') return this.onChunk(parts[5], Number(parts[6]), payload, false)
    if (parts[4] !== 'cmd') return
    let cmd
    try {
      cmd = JSON.parse(payload.toString())
    } catch {
      return
    }
    this.ctx.stats.commands++
    if (cmd.type === 'deploy') this.onDeploy(cmd)
    else this.event('received', cmd) // the simulator acknowledges other commands without acting on them
  }

  /**
   * A deploy command, answered as the agent does [EF-2.3.2]: the one being downloaded goes on (joined
   * again), one already carried out has its outcome reported again, a new one starts a download.
   */
  onDeploy(cmd) {
    if (this.download?.cmd.id === cmd.id) {
      this.ctx.stats.deploysResumed = (this.ctx.stats.deploysResumed ?? 0) + 1
      this.joinDownload()
    } else if (this.doneCmds?.has(cmd.id)) {
      this.ctx.stats.deploysReported = (this.ctx.stats.deploysReported ?? 0) + 1
      const { model, version } = cmd.manifest
      this.event('activated', cmd, { model, version, artifact: cmd.manifest.artifact.digest })
    } else this.startDownload(cmd)
  }

  /** A deploy [EF-2.3.1]: join the artifact's broadcast with every chunk missing (nothing is kept on disk). */
  startDownload(cmd) {
    const { manifest } = cmd
    const chunks = manifest.artifact.chunks
    if (this.download) this.finishDownload()
    this.event('received', cmd, { model: manifest.model, version: manifest.version })
    this.download = {
      cmd,
      digest: manifest.artifact.digest,
      chunks,
      todo: new Set(chunks.map((_, i) => i)),
      sinceAck: 0,
      lastProgress: Date.now(),
      started: Date.now(),
    }
    this.ctx.stats.deploys++
    this.event('downloading', cmd, {
      model: manifest.model,
      version: manifest.version,
      bytes: 0,
      totalBytes: manifest.artifact.size,
    })
    this.joinDownload()
    this.download.timer = setInterval(() => this.checkStall(), 1000)
  }

  /** (Re-)subscribes to the broadcast and joins with what is still missing, as after every reconnect [EF-2.7]. */
  joinDownload() {
    const download = this.download
    this.send({
      cmd: 'subscribe',
      messageId: this.msgId(),
      subscriptions: [{ topic: `ef/v1/art/${download.digest}/+`, qos: 0 }],
    })
    const todo = [...download.todo]
    for (let i = 0; i < todo.length; i += 4096)
      this.fetch({ artifact: download.digest, op: 'join', chunks: todo.slice(i, i + 4096) })
    download.lastProgress = Date.now()
  }

  checkStall() {
    const download = this.download
    if (!download || !this.connected) return
    const now = Date.now()
    if (now - download.started > DOWNLOAD_TIMEOUT_MS) {
      this.ctx.stats.deploysFailed++
      this.event('failed', download.cmd, {
        code: 'EF_ERR_DOWNLOAD_TIMEOUT',
        message: `${download.todo.size} chunks missing`,
      })
      this.finishDownload()
    } else if (now - download.lastProgress > STALL_MS) {
      download.lastProgress = now
      this.ctx.stats.repairsAsked++
      this.fetch({ artifact: download.digest, op: 'repair', chunks: [...download.todo].slice(0, REPAIR_WINDOW) })
    }
  }

  onChunk(digest, index, payload, broadcast) {
    const download = this.download
    const { stats } = this.ctx
    stats.chunkBytes += payload.length
    if (!download || download.digest !== digest || !download.todo.has(index)) {
      stats.duplicateChunks++
      return
    }
    const ref = download.chunks[index]
    if (payload.length !== ref.size || sha256(payload) !== ref.digest) {
      // Damaged: acknowledge it arrived and ask for it alone [EF-4.3].
      stats.badChunks++
      if (broadcast) this.fetch({ artifact: digest, op: 'ack', last: index })
      this.fetch({ artifact: digest, op: 'repair', chunks: [index] })
      return
    }
    download.todo.delete(index)
    download.lastProgress = Date.now()
    if (broadcast && ++download.sinceAck >= ACK_EVERY) {
      download.sinceAck = 0
      this.fetch({ artifact: digest, op: 'ack', last: index })
    }
    if (download.todo.size === 0) this.activate()
  }

  /** All chunks verified: the agent's verify → stage → activate, reported, and a fresh state [EF-4.5]. */
  activate() {
    const { cmd } = this.download
    const { model, version } = cmd.manifest
    const ids = { model, version, artifact: this.download.digest }
    this.fetch({ artifact: this.download.digest, op: 'done' })
    ;(this.doneCmds ??= new Set()).add(cmd.id)
    this.finishDownload()
    for (const kind of ['downloaded', 'verified', 'staged', 'activated']) this.event(kind, cmd, ids)
    const prev = this.models.find((m) => m.name === model)
    const slot = prev?.slot === 'a' ? 'b' : 'a'
    this.models = [
      ...this.models.filter((m) => m.name !== model),
      {
        name: model,
        version,
        latencyMs: prev?.latencyMs ?? 5,
        precision: cmd.manifest.precision ?? 'fp32',
        artifact: ids.artifact,
        slot,
        ...(prev ? { previous: prev.version } : {}),
      },
    ]
    this.tpl = telemetryTemplate(this.spec.id, this.models, this.spec.seed + this.seq)
    this.ctx.stats.deploysDone++
    this.publishState()
  }

  finishDownload() {
    const d = this.download
    clearInterval(d.timer)
    this.send({ cmd: 'unsubscribe', messageId: this.msgId(), unsubscriptions: [`ef/v1/art/${d.digest}/+`] })
    this.download = undefined
  }
}
