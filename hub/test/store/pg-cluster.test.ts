// The throwaway PostgreSQL cluster of test/support/postgres.mjs, which the
// PostgreSQL store and leader-election tests build on: it starts on a free
// port, keeps its data across stopServer()/startServer() (the restart failure
// case), and stop() removes its folder.
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { startPostgres } from '../../../test/support/postgres.mjs'

describe('startPostgres', () => {
  it('serves its database, keeps committed rows across a restart, and removes its folder on stop', async () => {
    const pg = await startPostgres()
    try {
      expect(pg.url).toBe(`postgresql://edgefleet@127.0.0.1:${pg.port}/edgefleet`)
      await pg.psql('CREATE TABLE t (v INT); INSERT INTO t VALUES (41), (1)')
      await pg.stopServer()
      await expect(pg.psql('SELECT 1')).rejects.toThrow(/psql/)
      await pg.startServer()
      expect((await pg.psql('SELECT sum(v) FROM t')).trim()).toBe('42')
    } finally {
      await pg.stop()
    }
    expect(existsSync(pg.dir)).toBe(false)
  })
})
