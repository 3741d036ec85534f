// Leader election on a real PostgreSQL [EF-12]: three electors on one throwaway
// cluster. Exactly one leads at every sample; a leader whose session is
// terminated, or whose renewals hang, stops its work before its lease can run
// out and a new term starts within 5 s; a clean close hands over at once. The
// work intervals of all electors never overlap (two leaders never act at once).
import pg from 'pg'
import pino from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { LeaderElector, LeaderOnlyWork, startCluster } from '../../src/cluster/index.js'
import { checkClusterUrl, checkReplicaId } from '../../src/cluster/config.js'
import { startPostgres, type Postgres } from '../../../test/support/postgres.mjs'
import { waitFor } from '../fixtures/hub.js'

const log = pino({ level: 'silent' })

interface Replica {
  elector: LeaderElector
  work: LeaderOnlyWork
}

/** Every term's work interval across replicas, in start order: each starts after the previous stopped. */
function expectNoOverlap(replicas: Replica[]): void {
  const intervals = replicas.flatMap((r) => r.work.history).sort((a, b) => a.started - b.started)
  for (let i = 1; i < intervals.length; i++) {
    const before = intervals[i - 1]
    expect(before.stopped, `term ${before.term} still working when term ${intervals[i].term} started`).toBeDefined()
    expect(intervals[i].started).toBeGreaterThanOrEqual(before.stopped!)
    expect(intervals[i].term).toBeGreaterThan(before.term)
  }
}

describe('leader election on PostgreSQL', () => {
  let pgc: Postgres
  let replicas: Replica[] = []
  let samples: number[] = []
  let sampler: NodeJS.Timeout | undefined
  let lease = 'hub'

  beforeAll(async () => {
    pgc = await startPostgres()
  }, 120_000)
  afterAll(async () => {
    await pgc?.stop()
  })
  afterEach(async () => {
    clearInterval(sampler)
    await Promise.all(replicas.map((r) => r.elector.close()))
    replicas = []
  })

  /** n electors on a fresh lease name, each running a LeaderOnlyWork; samples how many work at once every 20 ms. */
  function startReplicas(n: number): Replica[] {
    lease = `test-${Math.random().toString(36).slice(2)}`
    replicas = Array.from({ length: n }, (_, i) => {
      const work = new LeaderOnlyWork([], log)
      const elector = new LeaderElector({ url: pgc.url, replicaId: `r${i}`, log, name: lease }, work)
      elector.start()
      return { elector, work }
    })
    samples = []
    sampler = setInterval(() => samples.push(replicas.filter((r) => r.work.active || r.elector.isLeader()).length), 20)
    return replicas
  }

  const leaders = () => replicas.filter((r) => r.elector.isLeader())
  const maxTerm = () => Math.max(...replicas.map((r) => r.elector.term()))

  it('exactly one leads; a terminated leader session gives a new term within 5 s', async () => {
    startReplicas(3)
    await waitFor(() => leaders().length === 1, 10_000, 'a first leader')
    const first = leaders()[0]
    const term = first.elector.term()
    // Steady state: three renewal rounds with one leader at every sample.
    const steadyFrom = samples.length
    await new Promise((r) => setTimeout(r, 3000))
    expect(samples.slice(steadyFrom).every((n) => n === 1)).toBe(true)

    const killedAt = Date.now()
    const pids = await pgc.psql(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'edgefleet-elector ${first.elector.replicaId}'`,
    )
    expect(pids.trim()).toBe('t')
    await waitFor(() => leaders().length === 1 && maxTerm() > term, 5000, 'a new term after the session was killed')
    const failoverMs = Date.now() - killedAt
    expect(leaders()[0].elector.term()).toBe(term + 1)
    expect(first.work.history[0].reason).toMatch(/session/)
    expect(Math.max(...samples)).toBe(1)
    expectNoOverlap(replicas)
    console.log(`leader session terminated: new term after ${failoverMs} ms`)
  }, 30_000)

  it('a leader whose renewals hang stops its work before its lease runs out; the next term follows', async () => {
    startReplicas(2)
    await waitFor(() => leaders().length === 1, 10_000, 'a first leader')
    const first = leaders()[0]
    const term = first.elector.term()
    // Holding the lease row's lock makes every renewal and bid wait (until statement_timeout).
    const locker = new pg.Client({ connectionString: pgc.url })
    await locker.connect()
    try {
      await locker.query('BEGIN')
      const row = await locker.query<{ ms: string }>(
        'SELECT (extract(epoch from expires_at) * 1000)::bigint AS ms FROM edgefleet_leader_lease WHERE name = $1 FOR UPDATE',
        [lease],
      )
      const leaseEndsAt = Number(row.rows[0].ms)
      await waitFor(() => !first.work.active, 5000, 'the leader to fence itself')
      const stoppedAt = first.work.history[0].stopped!
      expect(stoppedAt).toBeLessThan(leaseEndsAt)
      expect(first.work.history[0].reason).toMatch(/self-fencing|session/)
      // Nobody leads while the lease might still be valid.
      await waitFor(() => Date.now() > leaseEndsAt + 200, 5000, 'the lease end')
      expect(leaders()).toHaveLength(0)
      await locker.query('ROLLBACK')
    } finally {
      await locker.end()
    }
    await waitFor(() => leaders().length === 1 && maxTerm() > term, 5000, 'the next term after the lock')
    expect(Math.max(...samples)).toBe(1)
    expectNoOverlap(replicas)
  }, 30_000)

  it('a clean close stops the work, releases the lease and another leads at once', async () => {
    startReplicas(2)
    await waitFor(() => leaders().length === 1, 10_000, 'a first leader')
    const first = leaders()[0]
    const other = replicas.find((r) => r !== first)!
    const term = first.elector.term()
    const closedAt = Date.now()
    await first.elector.close()
    // Well under one lease (3 s): the release and its NOTIFY, not the lease running out.
    await waitFor(() => other.elector.isLeader(), 2000, 'the other replica to lead after the release')
    const handoverMs = Date.now() - closedAt
    expect(other.elector.term()).toBe(term + 1)
    expect(first.work.history[0].reason).toBe('shutting down')
    expectNoOverlap(replicas)
    console.log(`clean close: handed over in ${handoverMs} ms`)
  }, 30_000)
})

describe('cluster settings', () => {
  it('a hub without a cluster URL is the only replica: leads in term 0, its work stops on close', async () => {
    let running = 0
    const cluster = startCluster(
      { replicaId: 'solo' },
      [
        {
          name: 't',
          start: () => running++,
          stop: () => {
            running--
          },
        },
      ],
      log,
    )
    expect(cluster.leadership.isLeader()).toBe(true)
    expect(cluster.leadership.term()).toBe(0)
    expect(running).toBe(1)
    await cluster.close()
    expect(running).toBe(0)
  })

  it('refuses a cluster URL that is not PostgreSQL and a bad replica id with EF_ERR_CONFIG_INVALID', () => {
    expect(() => checkClusterUrl('mysql://db/edgefleet')).toThrow(
      expect.objectContaining({ code: 'EF_ERR_CONFIG_INVALID' }),
    )
    expect(() => checkClusterUrl('not a url')).toThrow(expect.objectContaining({ code: 'EF_ERR_CONFIG_INVALID' }))
    expect(checkClusterUrl('postgres://u@h:5432/d')).toBe('postgres://u@h:5432/d')
    expect(() => checkReplicaId('has space')).toThrow(expect.objectContaining({ code: 'EF_ERR_CONFIG_INVALID' }))
    expect(() => checkReplicaId('')).toThrow(expect.objectContaining({ code: 'EF_ERR_CONFIG_INVALID' }))
    expect(checkReplicaId('hub-a.1')).toBe('hub-a.1')
  })

  it('refuses lease timings that leave no room to fence (RangeError)', () => {
    const hooks = { elected: () => undefined, deposed: () => undefined }
    expect(
      () => new LeaderElector({ url: 'postgresql://x/y', replicaId: 'r', log, leaseMs: 1500, renewMs: 1000 }, hooks),
    ).toThrow(RangeError)
  })
})
