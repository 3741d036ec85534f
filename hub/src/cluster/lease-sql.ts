// The statements of the leader lease [EF-12.1]: one row per lease name in its
// own table, read and written only by cluster/elector.ts. Every time test uses
// PostgreSQL's clock (clock_timestamp()), never a replica's, so replicas with
// skewed clocks still agree on when a lease has run out.
import type { Client } from 'pg'

/** The election's own table; not part of the store's schema (hub/src/store never touches it). */
const TABLE = 'edgefleet_leader_lease'
/** NOTIFY channel a releasing leader signals, so followers bid at once instead of at their next round. */
export const RELEASE_CHANNEL = 'edgefleet_leader_released'

const CREATE = `CREATE TABLE IF NOT EXISTS ${TABLE} (
  name text PRIMARY KEY,
  holder text NOT NULL,
  term bigint NOT NULL,
  expires_at timestamptz NOT NULL,
  acquired_at timestamptz NOT NULL
)`

/** Takes the lease when nobody holds it or its holder let it run out; each takeover is a new term [EF-12.2]. */
const ACQUIRE = `INSERT INTO ${TABLE} AS l (name, holder, term, expires_at, acquired_at)
VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3::double precision / 1000), clock_timestamp())
ON CONFLICT (name) DO UPDATE
  SET holder = EXCLUDED.holder, term = l.term + 1, expires_at = EXCLUDED.expires_at, acquired_at = EXCLUDED.acquired_at
  WHERE l.expires_at <= clock_timestamp()
RETURNING term`

/** Extends the lease only for the same holder and term, and only while it has not run out [EF-12.3]. */
const RENEW = `UPDATE ${TABLE}
SET expires_at = clock_timestamp() + make_interval(secs => $4::double precision / 1000)
WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at > clock_timestamp()
RETURNING term`

/** Ends the lease now (clean shutdown) and wakes the followers [EF-12.4]. */
const RELEASE = `WITH released AS (
  UPDATE ${TABLE} SET expires_at = clock_timestamp()
  WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at > clock_timestamp()
  RETURNING name
)
SELECT pg_notify('${RELEASE_CHANNEL}', name) FROM released`

const READ = `SELECT holder, term, expires_at > clock_timestamp() AS live FROM ${TABLE} WHERE name = $1`

/** PostgreSQL's codes for "created concurrently by another session": the table exists, which is all we need. */
const CREATED_CONCURRENTLY = new Set(['23505', '42P07'])

export async function createLeaseTable(client: Client): Promise<void> {
  try {
    await client.query(CREATE)
  } catch (err) {
    if (!CREATED_CONCURRENTLY.has((err as { code?: string }).code ?? '')) throw err
  }
}

/** The new term when this replica took the lease, undefined when someone else holds it. */
export async function acquireLease(client: Client, name: string, holder: string, leaseMs: number) {
  const res = await client.query<{ term: string }>(ACQUIRE, [name, holder, leaseMs])
  return res.rows[0] ? Number(res.rows[0].term) : undefined
}

/** True when the lease was extended by leaseMs from now (PostgreSQL's clock). */
export async function renewLease(client: Client, name: string, holder: string, term: number, leaseMs: number) {
  const res = await client.query(RENEW, [name, holder, term, leaseMs])
  return res.rowCount === 1
}

export async function releaseLease(client: Client, name: string, holder: string, term: number): Promise<void> {
  await client.query(RELEASE, [name, holder, term])
}

/** Who holds the lease and in which term; `live` false when it ran out. */
export async function readLease(
  client: Client,
  name: string,
): Promise<{ holder: string; term: number; live: boolean } | undefined> {
  const res = await client.query<{ holder: string; term: string; live: boolean }>(READ, [name])
  const row = res.rows[0]
  return row ? { holder: row.holder, term: Number(row.term), live: row.live } : undefined
}
