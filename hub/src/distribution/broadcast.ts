// Artifact distribution: broadcast with repair [EF-2.7] of model builds and
// of agent packages [EF-11.4] alike (an artifact is a digest and a chunk list).
//
// The first `join` for an artifact opens a broadcast session. After a short
// gathering delay (so a wave of agents joins one session) every chunk that any
// joined agent misses is published ONCE on its content-addressed topic and the
// broker fans it out. A chunk that was already broadcast before an agent
// joined, or that an agent lost, is sent to that agent alone on its repair
// topic. Memory stays bounded everywhere: the hub reads each chunk from disk
// when it publishes it, at most `window` publishes await their PUBACK, and the
// broadcast runs at most `aheadChunks` ahead of what the receivers
// acknowledged — brokers PUBACK long before slow subscribers have the data, so
// pacing looks at delivery, not at PUBACKs. The slowest tenth of the receivers
// does not pace it: one slow or silent device must not hold back a fleet; it
// keeps listening and asks for what it still lacks afterwards (repair).
// A session lives until its receivers are done (or long silent), so their
// late repair requests are still judged against what is on its way to them.
import { chunkOffsets, topics, type FetchRequest } from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { HubStore } from '../store/index.js'
import type { BlobStore } from '../store/blobs.js'

export interface DistributorOptions {
  store: HubStore
  blobs: BlobStore
  log: Logger
  publish: (topic: string, payload: Buffer) => Promise<void>
  now?: () => number
  /** Publishes awaiting their PUBACK at once. */
  window?: number
  /** How far (in chunks) the broadcast may run ahead of the receivers that pace it. */
  aheadChunks?: number
  /** Share of the live receivers, the slowest, that do not pace the broadcast (at least one of two or more). */
  stragglerShare?: number
  /** Wait after the latest join before broadcasting, so a wave joins together. */
  gatherMs?: number
  /** Longest wait after the first join of a wave, however joins keep coming. */
  gatherMaxMs?: number
  /** How many receivers to expect for an artifact (online devices it is being deployed to): the gathering ends early once they all joined. */
  expectedReceivers?: (artifact: string) => number
  /** A receiver that has not acknowledged for this long stops pacing the broadcast. */
  receiverTimeoutMs?: number
}

export const defaultDistributorOptions = {
  window: 32,
  aheadChunks: 64,
  /** A tenth: a few slow devices cost repairs later, never the whole fleet's time. */
  stragglerShare: 0.1,
  /** 10 seconds without a new join: commands to a large wave on a busy hub or broker arrive over many seconds (5 s lost 48 of 50 agents on a loaded Mosquitto); the wait ends as soon as every expected receiver joined. */
  gatherMs: 10_000,
  /** 30 seconds: a receiver that joins later is sent what it missed alone (repair). */
  gatherMaxMs: 30_000,
  /** 15 seconds: a broker serving hundreds of receivers leaves long gaps. */
  receiverTimeoutMs: 15_000,
}

interface Layout {
  offsets: number[]
  sizes: number[]
}

interface Receiver {
  /** Broadcast sequence number of the last chunk it confirmed. */
  ackSeq: number
  lastAck: number
}

interface Session {
  artifact: string
  layout: Layout
  /** Chunk indexes still to broadcast (ascending). */
  pending: Set<number>
  /** index → broadcast sequence number, for chunks already broadcast. */
  seqOf: Map<number, number>
  /** index → when it was last broadcast (ms): a chunk sent long ago and still missing was lost. */
  sentAt: Map<number, number>
  nextSeq: number
  receivers: Map<string, Receiver>
  broadcasting: boolean
  /** The position it paces on (paceSeq), and the acks, joins and leaves since it was worked out. */
  pace: { seq: number | undefined; changes: number }
  gatherTimer?: NodeJS.Timeout
  openedAt: number
  /** The last count of expected receivers and when it was read: read at most once a second, not per join. */
  expected?: { n: number; at: number }
}

/** A count of expected receivers is one query over the artifact's assignments: reused for this long (ms). */
const EXPECTED_TTL_MS = 1000

interface Job {
  artifact: string
  index: number
  /** undefined = broadcast; otherwise the one device to send it to. */
  device?: string
}

export interface DistributionStats {
  broadcastChunks: number
  broadcastBytes: number
  repairChunks: number
  repairBytes: number
  /** Repair requests not served because the chunk was most likely still on its way. */
  prematureRepairs: number
}

export class Distributor {
  private readonly o: Required<Omit<DistributorOptions, 'now' | 'expectedReceivers'>> & {
    now: () => number
    expectedReceivers?: (artifact: string) => number
  }
  private readonly sessions = new Map<string, Session>()
  private readonly repairs: Job[] = []
  private readonly repairKeys = new Set<string>()
  private readonly layouts = new Map<string, Layout>()
  private inFlight = 0
  private pumping = false
  readonly stats: DistributionStats = {
    broadcastChunks: 0,
    broadcastBytes: 0,
    repairChunks: 0,
    repairBytes: 0,
    prematureRepairs: 0,
  }
  private readonly sweeper: NodeJS.Timeout

  constructor(opts: DistributorOptions) {
    this.o = { ...defaultDistributorOptions, now: Date.now, ...opts }
    // Receivers that went silent stop pacing; finished sessions are dropped.
    this.sweeper = setInterval(() => this.sweep(), 1000)
    this.sweeper.unref()
  }

  close(): void {
    clearInterval(this.sweeper)
    for (const s of this.sessions.values()) if (s.gatherTimer) clearTimeout(s.gatherTimer)
    this.sessions.clear()
  }

  handle(req: FetchRequest): void {
    const layout = this.layout(req.artifact)
    if (!layout) {
      this.o.log.warn(
        { code: 'EF_ERR_BUILD_NOT_FOUND', artifact: req.artifact, device: req.deviceId },
        'fetch for an unknown artifact',
      )
      return
    }
    const valid = (req.chunks ?? []).filter((i) => i < layout.sizes.length)
    switch (req.op ?? 'join') {
      case 'join':
        this.join(req.deviceId, req.artifact, layout, valid, req.fresh === true)
        break
      case 'repair':
        this.repair(req.deviceId, req.artifact, valid)
        break
      case 'ack': {
        const s = this.sessions.get(req.artifact)
        const r = s?.receivers.get(req.deviceId)
        if (s && r && req.last !== undefined) {
          const seq = s.seqOf.get(req.last)
          if (seq !== undefined && seq > r.ackSeq) r.ackSeq = seq
          r.lastAck = this.o.now()
          s.pace.changes++
        }
        break
      }
      case 'done': {
        const s = this.sessions.get(req.artifact)
        if (s?.receivers.delete(req.deviceId)) s.pace.changes++
        break
      }
    }
    this.pump()
  }

  private layout(artifact: string): Layout | undefined {
    const known = this.layouts.get(artifact)
    if (known) return known
    // A model build's artifact, or an agent package with a chunk list [EF-11.4]: the same path carries both.
    const chunks = this.o.store.registry.getArtifact(artifact)?.chunks ?? this.o.store.agentReleases.chunksOf(artifact)
    if (!chunks || !this.o.blobs.has(artifact)) return undefined
    const layout = { offsets: chunkOffsets(chunks), sizes: chunks.map((c) => c.size) }
    this.layouts.set(artifact, layout)
    return layout
  }

  private join(device: string, artifact: string, layout: Layout, missing: number[], fresh: boolean): void {
    let session = this.sessions.get(artifact)
    if (!session) {
      const opened: Session = {
        artifact,
        layout,
        pending: new Set(),
        seqOf: new Map(),
        sentAt: new Map(),
        nextSeq: 0,
        receivers: new Map(),
        broadcasting: false,
        pace: { seq: undefined, changes: 1 },
        openedAt: this.o.now(),
      }
      this.sessions.set(artifact, opened)
      session = opened
    }
    // A later wave finds a finished broadcast with no receiver left: broadcast again. Whether the
    // others were heard from lately does not decide it: under load acks run late, and a broadcast
    // to all of them for one reconnected device costs far more than sending it that device alone.
    const newPass = !session.gatherTimer && session.pending.size === 0 && !this.othersIn(session, device)
    // While a wave gathers, its members' chunks all go into the coming broadcast.
    const gathering = newPass || session.gatherTimer !== undefined
    // A new receiver has seen nothing of what was broadcast so far; a re-joining one (after a broker
    // restart) keeps the position it confirmed, so chunks still on their way to it are not sent twice.
    // A fresh join (the agent started this download anew, e.g. after a restart) is a new receiver:
    // what was broadcast while it was gone is lost to it, and waiting for it would cost a stall.
    const previous = fresh ? undefined : session.receivers.get(device)
    const receiver = { ackSeq: previous?.ackSeq ?? session.nextSeq - 1, lastAck: this.o.now() }
    session.receivers.set(device, receiver)
    session.pace.changes++
    for (const i of missing) {
      if (!session.seqOf.has(i) || gathering) session.pending.add(i)
      else if (previous && this.onItsWay(session, receiver, i, this.o.now())) this.stats.prematureRepairs++
      // Broadcast already passed it (before this agent subscribed): send it alone.
      else this.enqueueRepair(device, artifact, i)
    }
    if (newPass && session.pending.size > 0) {
      session.broadcasting = false
      session.openedAt = this.o.now()
    }
    if (!session.broadcasting) this.gather(session)
  }

  /** (Re)arms the gathering wait: gatherMs after this join, at most gatherMaxMs after the wave's first. */
  private gather(s: Session): void {
    if (this.allJoined(s)) {
      this.startBroadcast(s)
      return
    }
    if (s.gatherTimer) clearTimeout(s.gatherTimer)
    const left = Math.max(0, s.openedAt + this.o.gatherMaxMs - this.o.now())
    s.gatherTimer = setTimeout(() => this.startBroadcast(s), Math.min(this.o.gatherMs, left))
  }

  /**
   * Whether every expected receiver joined. The expected count is read at most once a second: read
   * per join it cost one query over the artifact's assignments for each of N joins (N² rows at 10,000).
   */
  private allJoined(s: Session, fresh = false): boolean {
    if (!this.o.expectedReceivers) return false
    const now = this.o.now()
    if (fresh || !s.expected || now - s.expected.at >= EXPECTED_TTL_MS)
      s.expected = { n: this.o.expectedReceivers(s.artifact), at: now }
    return s.receivers.size >= s.expected.n
  }

  /**
   * Whether `device` is taking part in a broadcast now: joined one that is gathering, or confirmed
   * chunks lately. Its deployment shows no progress meanwhile, and is not idle for that [EF-2.1.4].
   */
  receiving(device: string): boolean {
    const now = this.o.now()
    for (const s of this.sessions.values()) {
      const r = s.receivers.get(device)
      if (r && (s.gatherTimer !== undefined || now - r.lastAck < this.o.receiverTimeoutMs)) return true
    }
    return false
  }

  /** Whether a receiver other than `device` is still in the session (not done, not expired). */
  private othersIn(s: Session, device: string): boolean {
    return s.receivers.size > (s.receivers.has(device) ? 1 : 0)
  }

  private startBroadcast(session: Session): void {
    if (session.gatherTimer) clearTimeout(session.gatherTimer)
    session.gatherTimer = undefined
    session.broadcasting = true
    this.o.log.info(
      {
        artifact: session.artifact,
        receivers: session.receivers.size,
        chunks: session.pending.size,
        gatheredMs: this.o.now() - session.openedAt,
      },
      'broadcast started',
    )
    this.pump()
  }

  private repair(device: string, artifact: string, chunks: number[]): void {
    const s = this.sessions.get(artifact)
    const r = s?.receivers.get(device)
    const now = this.o.now()
    for (const i of chunks) {
      // Still to come in the broadcast: it will arrive without a second copy.
      if (s?.pending.has(i)) continue
      if (s && r && this.onItsWay(s, r, i, now)) {
        this.stats.prematureRepairs++
        continue
      }
      this.enqueueRepair(device, artifact, i)
    }
  }

  /**
   * Broadcast after the last chunk this receiver confirmed, and either it is
   * still confirming or the chunk left recently: most likely still queued in
   * the broker for it (chunks arrive in order). Repairing it now would send it
   * twice, and under load such duplicates snowball; if it was really lost, the
   * receiver asks again. A receiver that never confirms anything gets it once
   * the chunk is `receiverTimeoutMs` old.
   */
  private onItsWay(s: Session, r: Receiver, index: number, now: number): boolean {
    const seq = s.seqOf.get(index)
    if (seq === undefined || seq <= r.ackSeq) return false
    return now - r.lastAck < this.o.receiverTimeoutMs || now - (s.sentAt.get(index) ?? 0) < this.o.receiverTimeoutMs
  }

  private enqueueRepair(device: string, artifact: string, index: number): void {
    const key = `${device}/${artifact}/${index}`
    if (this.repairKeys.has(key)) return
    this.repairKeys.add(key)
    this.repairs.push({ artifact, index, device })
  }

  /**
   * The acknowledged position the broadcast paces on [EF-2.7]: that of the
   * slowest live receiver once the slowest `stragglerShare` of them (at least
   * one of two or more) is left out; undefined when nobody is live. Worked
   * out again after every 1/64 of the receivers reported (a sort per ack
   * would cost seconds per chunk with 10,000 receivers), and each second.
   */
  private paceOf(s: Session, now: number, force = false): number | undefined {
    if (force || s.pace.changes >= Math.max(1, s.receivers.size / 64))
      s.pace = { seq: this.paceSeq(s, now), changes: 0 }
    return s.pace.seq
  }

  private paceSeq(s: Session, now: number): number | undefined {
    const acked: number[] = []
    for (const r of s.receivers.values()) if (now - r.lastAck < this.o.receiverTimeoutMs) acked.push(r.ackSeq)
    if (acked.length === 0) return undefined
    acked.sort((a, b) => a - b)
    const share = this.o.stragglerShare
    const left = acked.length < 2 || share <= 0 ? 0 : Math.max(1, Math.floor(acked.length * share))
    return acked[left]
  }

  /** Next broadcast chunk allowed by flow control, across sessions. */
  private nextBroadcast(): Job | undefined {
    const now = this.o.now()
    for (const session of this.sessions.values()) {
      // Never to an empty audience: every receiver finished or went silent [EF-2.7].
      if (!session.broadcasting || session.pending.size === 0 || session.receivers.size === 0) continue
      const pace = this.paceOf(session, now)
      if (pace !== undefined && session.nextSeq - pace > this.o.aheadChunks) continue
      const index = Math.min(...session.pending)
      session.pending.delete(index)
      session.seqOf.set(index, session.nextSeq++)
      session.sentAt.set(index, now)
      if (session.pending.size === 0)
        this.o.log.info(
          {
            artifact: session.artifact,
            receivers: session.receivers.size,
            chunks: session.nextSeq,
            ms: now - session.openedAt,
          },
          'broadcast issued its last chunk',
        )
      return { artifact: session.artifact, index }
    }
    return undefined
  }

  private pump(): void {
    if (this.pumping) return
    this.pumping = true
    try {
      while (this.inFlight < this.o.window) {
        const job = this.repairs.shift() ?? this.nextBroadcast()
        if (!job) break
        if (job.device) this.repairKeys.delete(`${job.device}/${job.artifact}/${job.index}`)
        this.send(job)
      }
    } finally {
      this.pumping = false
    }
  }

  private send(job: Job): void {
    const l = this.layout(job.artifact)
    if (!l) return
    const payload = this.o.blobs.read(job.artifact, l.offsets[job.index], l.sizes[job.index])
    const topic = job.device
      ? topics.repair(job.device, job.artifact, job.index)
      : topics.chunk(job.artifact, job.index)
    if (job.device) {
      this.stats.repairChunks++
      this.stats.repairBytes += payload.length
    } else {
      this.stats.broadcastChunks++
      this.stats.broadcastBytes += payload.length
    }
    this.inFlight++
    this.o
      .publish(topic, payload)
      .catch((err: unknown) =>
        this.o.log.warn(
          { artifact: job.artifact, index: job.index, err: (err as Error).message },
          'chunk publish failed',
        ),
      )
      .finally(() => {
        this.inFlight--
        this.pump()
      })
  }

  private sweep(): void {
    const now = this.o.now()
    // A wave member that needed nothing (it held every chunk) never joins: stop waiting for it.
    for (const s of this.sessions.values()) {
      if (s.gatherTimer && this.allJoined(s, true)) this.startBroadcast(s)
    }
    for (const [k, s] of this.sessions) {
      for (const [d, r] of s.receivers) if (now - r.lastAck > 10 * this.o.receiverTimeoutMs) s.receivers.delete(d)
      this.paceOf(s, now, true) // receivers that went silent stop pacing
      // Every receiver done (or silent for 10 receiver timeouts): nobody to send to; a later wave opens a new one.
      if (!s.gatherTimer && s.receivers.size === 0) this.sessions.delete(k)
    }
    this.pump()
  }
}
