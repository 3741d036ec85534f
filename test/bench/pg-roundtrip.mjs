// The PostgreSQL store's per-statement cost (docs/SCALE.md): 5,000 `SELECT 1`
// through the hub's synchronous bridge (hub/src/store/pg/bridge.ts), three
// runs, on a throwaway cluster. Needs `pnpm -s build` and PostgreSQL
// (scripts/bootstrap.sh --test-deps). Write `uptime` beside any figure.
import { startPostgres } from '../support/postgres.mjs'
import { HubStore } from '../../hub/dist/store/index.js'

const QUERIES = 5000
const pg = await startPostgres()
try {
  const store = HubStore.open(pg.url)
  const stmt = store.db.prepare('SELECT 1 AS one')
  for (let run = 0; run < 3; run++) {
    const started = performance.now()
    for (let i = 0; i < QUERIES; i++) stmt.get()
    const micros = ((performance.now() - started) / QUERIES) * 1000
    console.log(`bridge round trip (SELECT 1, ${QUERIES} statements): ${micros.toFixed(0)} µs`)
  }
  store.close()
} finally {
  await pg.stop()
}
