// Leader failover between two real `hub start` processes electing on one real
// PostgreSQL [EF-12]: kill -9 of the leader → the other replica says leader on
// /healthz within 5 s, in a higher term; both never say leader at once.
// Each replica here keeps its own SQLite store, so this proves the election
// and the switch of leader-only work across processes, not a shared rollout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub, waitFor } from '../support/fleet.mjs'
import { startPostgres, type Postgres } from '../support/postgres.mjs'

type HubProc = Awaited<ReturnType<typeof startHub>>
interface Health {
  leader: boolean
  term: number
  replica: string
}

async function health(hub: HubProc): Promise<Health | undefined> {
  try {
    const res = await fetch(`${hub.httpUrl}/healthz`, { signal: AbortSignal.timeout(1000) })
    return (await res.json()) as Health
  } catch {
    return undefined // killed, or too slow to answer: not a leader we can see
  }
}

describe('leader failover between hub processes', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-failover-'))
  let pgc: Postgres
  const ids = ['hub-a', 'hub-b']
  const hubs: HubProc[] = []

  beforeAll(async () => {
    pgc = await startPostgres()
    for (const id of ids)
      hubs.push(
        await startHub({
          dataDir: join(tmp, id),
          extraArgs: ['--replica-id', id],
          logLevel: 'info', // the leader-only work's start and stop are info lines
          env: { EDGEFLEET_CLUSTER_URL: pgc.url },
        }),
      )
  }, 120_000)
  afterAll(async () => {
    await Promise.all(hubs.map((h) => h.stop()))
    await pgc?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('kill -9 of the leader: the other leads within 5 s in a higher term, never both at once', async () => {
    const leaderOf = async () => {
      const states = await Promise.all(hubs.map(health))
      const leading = states.filter((s) => s?.leader)
      expect(leading.length).toBeLessThanOrEqual(1)
      return leading[0]
    }
    const first = await waitFor(leaderOf, { timeoutMs: 15_000, intervalMs: 50, what: 'a leader' })
    const dead = hubs[ids.indexOf(first.replica)]
    const survivor = hubs.find((h) => h !== dead)!
    expect((await health(survivor))?.leader).toBe(false)
    const started = (hub: HubProc) =>
      hub
        .stderr()
        .split('\n')
        .filter((l) => l.includes('leader-only work started'))
    expect(started(dead)).toHaveLength(1)
    expect(started(survivor)).toHaveLength(0) // a follower runs no rollout tick, hold, resend, drift or retention

    const killedAt = Date.now()
    dead.proc.kill('SIGKILL')
    const next = await waitFor(
      async () => {
        const h = await health(survivor)
        return h?.leader ? h : undefined
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'the survivor to lead' },
    )
    const failoverMs = Date.now() - killedAt
    console.log(
      `kill -9 of ${first.replica} (term ${first.term}): ${next.replica} leads in term ${next.term} after ${failoverMs} ms`,
    )
    expect(next.term).toBeGreaterThan(first.term)
    expect(failoverMs).toBeLessThan(5000)
    await waitFor(() => started(survivor).length === 1, { timeoutMs: 5000, what: "the survivor's leader-only work" })
    expect(JSON.parse(started(survivor)[0])).toMatchObject({
      term: next.term,
      tasks: expect.arrayContaining(['rollouts']),
    })
    const metrics = await (await fetch(`${survivor.httpUrl}/metrics`)).text()
    expect(metrics).toContain(`edgefleet_leader{replica="${next.replica}"} 1`)
    expect(metrics).toContain(`edgefleet_leader_term{replica="${next.replica}"} ${next.term}`)
  }, 60_000)
})
