// Two in-process hubs electing on one real PostgreSQL [EF-12.5]: /healthz and
// /metrics say which one leads, and a clean stop of the leader hands the
// leader-only work to the other at once with a higher term.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHub, type Hub } from '../../src/hub.js'
import { startPostgres, type Postgres } from '../../../test/support/postgres.mjs'
import { COMPILE_WORKER, tempDir, waitFor } from '../fixtures/hub.js'

interface Health {
  leader: boolean
  term: number
  replica: string
}

async function health(hub: Hub): Promise<Health> {
  return (await hub.api.inject({ method: 'GET', url: '/healthz' })).json<Health>()
}

async function metric(hub: Hub, name: string): Promise<string | undefined> {
  const text = (await hub.api.inject({ method: 'GET', url: '/metrics' })).body
  return text.split('\n').find((line) => line.startsWith(`${name}{`))
}

describe('hub replicas on one PostgreSQL', () => {
  let pgc: Postgres
  const dirs = [tempDir('ef-replica-a-'), tempDir('ef-replica-b-')]
  const hubs: Hub[] = []
  beforeAll(async () => {
    pgc = await startPostgres()
    for (const [i, id] of ['hub-a', 'hub-b'].entries())
      hubs.push(
        await startHub({
          dataDir: dirs[i].dir,
          mqttPort: 0,
          httpPort: 0,
          log: 'silent',
          compileWorkerUrl: COMPILE_WORKER,
          auth: false,
          cluster: { url: pgc.url, replicaId: id },
        }),
      )
  }, 120_000)
  afterAll(async () => {
    await Promise.all(hubs.map((h) => h.close()))
    await pgc?.stop()
    for (const d of dirs) d.cleanup()
  })

  it('exactly one replica says leader; a clean stop hands over with a higher term', async () => {
    await waitFor(() => hubs.filter((h) => h.leadership.isLeader()).length === 1, 10_000, 'a leader')
    const [a, b] = await Promise.all(hubs.map(health))
    expect([a.leader, b.leader].filter(Boolean)).toHaveLength(1)
    expect([a.replica, b.replica]).toEqual(['hub-a', 'hub-b'])
    const leader = hubs.find((h) => h.leadership.isLeader())!
    const follower = hubs.find((h) => h !== leader)!
    const term = leader.leadership.term()
    expect(term).toBeGreaterThan(0)
    expect(await metric(leader, 'edgefleet_leader')).toBe(
      `edgefleet_leader{replica="${leader.leadership.replicaId}"} 1`,
    )
    expect(await metric(follower, 'edgefleet_leader')).toBe(
      `edgefleet_leader{replica="${follower.leadership.replicaId}"} 0`,
    )
    expect(await metric(leader, 'edgefleet_leader_term')).toBe(
      `edgefleet_leader_term{replica="${leader.leadership.replicaId}"} ${term}`,
    )

    await leader.close()
    await waitFor(() => follower.leadership.isLeader(), 2500, 'the other replica to lead after a clean stop')
    const after = await health(follower)
    expect(after).toMatchObject({ leader: true, term: term + 1 })
  }, 60_000)

  it('a hub without --cluster is the only replica: leader in term 0', async () => {
    const { dir, cleanup } = tempDir('ef-replica-solo-')
    const hub = await startHub({
      dataDir: dir,
      mqttPort: 0,
      httpPort: 0,
      log: 'silent',
      compileWorkerUrl: COMPILE_WORKER,
      auth: false,
    })
    try {
      expect(await health(hub)).toMatchObject({ leader: true, term: 0 })
      expect(await metric(hub, 'edgefleet_leader')).toMatch(/ 1$/)
    } finally {
      await hub.close()
      cleanup()
    }
  }, 60_000)
})
