// Leader election among hub replicas on PostgreSQL [EF-12]. Owns one
// dedicated connection per replica and the lease row it renews; decides when
// this replica may run the fleet's leader-only work and tells the hooks.
//
// Why a lease row with a term rather than an advisory lock: a session-level
// advisory lock is released only when PostgreSQL notices its session died,
// which for a cut network (no RST) is the TCP keepalive timeout, minutes by
// default; a lease on PostgreSQL's clock runs out after `leaseMs` whatever
// happened to the holder's connection, so the 5 s takeover is bounded by
// configuration, not by the kernel. The term counts takeovers (a fencing
// token): logged, on /healthz and /metrics, and checked by every renewal.
//
// Why its own connection and SQL outside hub/src/store: leadership must reflect
// this process's own session, renewed on a timer that a busy store pool must
// not delay, with statements that time out before the lease does; the lease
// table is the election's own, not part of the store's schema.
import pg from 'pg'
import type { Logger } from 'pino'
import { acquireLease, createLeaseTable, readLease, releaseLease, renewLease, RELEASE_CHANNEL } from './lease-sql.js'

export interface ElectorTiming {
  leaseMs: number
  renewMs: number
  fenceMarginMs: number
  name: string
}

const defaultElectorOptions: Readonly<ElectorTiming> = {
  /** How long a lease lasts past its last renewal, on PostgreSQL's clock, ms. */
  leaseMs: 3000,
  /** How often the leader renews and a follower bids, ms. */
  renewMs: 1000,
  /** The leader stops its work this long before its lease could run out (self-fencing), ms. */
  fenceMarginMs: 1000,
  /** The lease's name: the replicas of one fleet share it. */
  name: 'hub',
}

export interface ElectorOptions extends Partial<ElectorTiming> {
  /** postgresql://… of the database the replicas share. */
  url: string
  /** This replica's name in the lease row and in logs. */
  replicaId: string
  log: Logger
  /** Monotonic clock seam, ms (default performance.now). */
  now?: () => number
}

/** What the elector drives: the leader-only work of one term. Calls never overlap. */
export interface LeaderHooks {
  elected(term: number): Promise<void> | void
  /** Resolves once the term's work has stopped. */
  deposed(term: number, reason: string): Promise<void> | void
}

/** What /healthz and /metrics show of this replica [EF-12.5]. */
export interface Leadership {
  readonly replicaId: string
  /** True while this replica may run leader-only work. */
  isLeader(): boolean
  /** The term this replica leads in, or the last term it saw (0: none yet). */
  term(): number
}

interface Lead {
  term: number
  validUntil: number
}

export class LeaderElector implements Leadership {
  readonly replicaId: string
  private readonly o: Readonly<ElectorTiming>
  private readonly now: () => number
  private readonly log: Logger
  private client?: pg.Client
  private lead?: Lead
  private lastTerm = 0
  private fence?: NodeJS.Timeout
  private timer?: NodeJS.Timeout
  private running?: Promise<void>
  /** A replica that just lost its lease does not bid before this (ms, own clock): the others take over first. */
  private holdoffUntil = 0
  private closed = false
  /** The last round failed (logged once per outage). */
  private unreachable = false
  /** Hook calls in order: a term's work is never started while the previous one is still stopping. */
  private transitions: Promise<void> = Promise.resolve()

  constructor(
    private readonly options: ElectorOptions,
    private readonly hooks: LeaderHooks,
  ) {
    const { replicaId, log, now } = options
    const pick = <K extends keyof ElectorTiming>(k: K) => options[k] ?? defaultElectorOptions[k]
    this.o = Object.freeze({
      leaseMs: pick('leaseMs'),
      renewMs: pick('renewMs'),
      fenceMarginMs: pick('fenceMarginMs'),
      name: pick('name'),
    })
    if (!(this.o.renewMs > 0 && this.o.fenceMarginMs > 0 && this.o.leaseMs > this.o.renewMs + this.o.fenceMarginMs))
      throw new RangeError('leader lease: need leaseMs > renewMs + fenceMarginMs, all positive')
    this.replicaId = replicaId
    this.now = now ?? (() => performance.now())
    this.log = log.child({ svc: 'elector', replica: replicaId })
  }

  /** Starts bidding at once, then every renewMs. */
  start(): void {
    this.schedule(0)
  }

  isLeader(): boolean {
    return this.lead !== undefined && this.now() < this.lead.validUntil
  }

  term(): number {
    return this.lead?.term ?? this.lastTerm
  }

  /** Who holds the lease now, read from PostgreSQL (for tests and operators). */
  async holder(): Promise<{ holder: string; term: number; live: boolean } | undefined> {
    return readLease(await this.connect(), this.o.name)
  }

  /** Clean stop: the work stops first, then the lease is released so another replica takes over at once [EF-12.4]. */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    await this.running
    const lead = this.lead
    if (lead) {
      await this.stepDown('shutting down', false)
      await this.transitions
      if (this.client)
        await releaseLease(this.client, this.o.name, this.replicaId, lead.term).catch((err: unknown) =>
          this.log.warn({ err: (err as Error).message }, 'releasing the leader lease failed: it runs out by itself'),
        )
    }
    await this.transitions
    await this.dropClient()
  }

  private schedule(delayMs: number): void {
    if (this.closed) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.runRound(), delayMs)
    this.timer.unref()
  }

  /** One renewal (leader) or bid (follower); rounds never overlap, the next starts renewMs after this one did. */
  private runRound(): void {
    if (this.running) return
    const startedAt = this.now()
    this.running = this.round(startedAt).finally(() => {
      this.running = undefined
      this.schedule(Math.max(0, this.o.renewMs - (this.now() - startedAt)))
    })
  }

  private async round(sentAt: number): Promise<void> {
    try {
      const client = await this.connect()
      if (this.lead) await this.renew(client, this.lead, sentAt)
      else if (sentAt >= this.holdoffUntil && !this.closed) await this.bid(client, sentAt)
      this.unreachable = false
    } catch (err) {
      const reason = `election session failed: ${(err as Error).message}`
      // Once per outage: a replica that cannot reach PostgreSQL never leads, and operators should know why.
      if (!this.unreachable && !this.lead)
        this.log.warn({ err: (err as Error).message }, 'cannot reach the election database: not leading')
      this.unreachable = true
      await this.sessionLost(reason)
    }
  }

  private async renew(client: pg.Client, lead: Lead, sentAt: number): Promise<void> {
    const renewed = await renewLease(client, this.o.name, this.replicaId, lead.term, this.o.leaseMs)
    if (this.lead !== lead) return // fenced while the statement ran
    if (!renewed) return this.stepDown('the lease ran out or was taken over', true)
    this.extend(lead, sentAt)
  }

  private async bid(client: pg.Client, sentAt: number): Promise<void> {
    const term = await acquireLease(client, this.o.name, this.replicaId, this.o.leaseMs)
    if (term === undefined) return
    const lead: Lead = { term, validUntil: 0 }
    this.lead = lead
    this.lastTerm = term
    this.extend(lead, sentAt)
    this.log.info({ term }, 'elected leader')
    void this.transition(() => this.hooks.elected(term))
  }

  /**
   * The lease was extended by leaseMs at some moment after `sentAt` (PostgreSQL's clock), so it cannot run
   * out before sentAt + leaseMs: the work stops fenceMarginMs before that unless a later renewal lands [EF-12.3].
   */
  private extend(lead: Lead, sentAt: number): void {
    lead.validUntil = sentAt + this.o.leaseMs - this.o.fenceMarginMs
    clearTimeout(this.fence)
    this.fence = setTimeout(
      () => void this.sessionLost('the lease was not renewed in time (self-fencing)'),
      Math.max(0, lead.validUntil - this.now()),
    )
    this.fence.unref()
  }

  /** Stops this term's work; with holdoff, bids again only after one lease, so a live follower takes over. */
  private stepDown(reason: string, holdoff: boolean): Promise<void> {
    const lead = this.lead
    if (!lead) return this.transitions
    this.lead = undefined
    clearTimeout(this.fence)
    if (holdoff) this.holdoffUntil = this.now() + this.o.leaseMs
    this.log.warn({ term: lead.term, reason }, 'no longer leader: leader-only work stops')
    return this.transition(() => this.hooks.deposed(lead.term, reason))
  }

  /** Losing the election session is losing leadership: nothing proves the lease any more [EF-12.3]. */
  private async sessionLost(reason: string): Promise<void> {
    const stopped = this.stepDown(reason, true)
    await this.dropClient()
    await stopped
  }

  private transition(hook: () => Promise<void> | void): Promise<void> {
    this.transitions = this.transitions
      .then(hook)
      .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'leader transition failed'))
    return this.transitions
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client
    const client = new pg.Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: this.o.leaseMs,
      // A statement never outlives the lease it would renew (client and server side).
      query_timeout: this.o.leaseMs,
      statement_timeout: this.o.leaseMs,
      keepAlive: true,
      application_name: `edgefleet-elector ${this.replicaId}`.slice(0, 63),
    })
    const lost = (why: string) => () => {
      if (this.client === client) void this.sessionLost(why)
    }
    client.on('error', (err) => lost(`election session error: ${err.message}`)())
    client.on('end', lost('election session ended'))
    client.on('notification', () => {
      if (!this.lead && !this.closed && this.now() >= this.holdoffUntil) this.schedule(0)
    })
    try {
      await client.connect()
      await createLeaseTable(client)
      await client.query(`LISTEN ${RELEASE_CHANNEL}`)
    } catch (err) {
      await client.end().catch(() => undefined)
      throw err
    }
    this.client = client
    return client
  }

  private async dropClient(): Promise<void> {
    const client = this.client
    this.client = undefined
    await client?.end().catch(() => undefined)
  }
}
