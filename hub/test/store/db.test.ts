// Schema migrations keyed by PRAGMA user_version: a fresh file reaches the
// latest version, reopening applies nothing, and a partly migrated file is
// brought forward.
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { openDb, migrate, SqliteDb } from '../../src/store/db.js'
import { MIGRATIONS } from '../../src/store/migrations.js'
import { HubStore } from '../../src/store/index.js'
import { tempDir } from '../fixtures/hub.js'

const tables = (db: Database.Database) =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
    (r) => r.name,
  )

describe('openDb / migrate', () => {
  let cleanup: () => void = () => undefined // replaced by each test that opens a file
  afterEach(() => cleanup())

  it('brings a fresh file to the latest user_version with every table', () => {
    const t = tempDir()
    cleanup = t.cleanup
    const db = openDb({ path: join(t.dir, 'hub.db') }).raw
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length)
    expect(MIGRATIONS.length).toBeGreaterThan(0)
    expect(tables(db)).toEqual(
      expect.arrayContaining([
        'artifacts',
        'builds',
        'deployment_devices',
        'deployments',
        'devices',
        'events',
        'models',
        'telemetry',
        'telemetry_batches',
        'versions',
      ]),
    )
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1)
    db.close()
  })

  it('reopening is a no-op that keeps the data', () => {
    const t = tempDir()
    cleanup = t.cleanup
    const path = join(t.dir, 'hub.db')
    const s1 = HubStore.open(path)
    s1.devices.insert('dev-1', 'gateway-rpi4', { site: 'a' }, 'ab'.repeat(32), 1000)
    const schemaBefore = s1.db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all()
    s1.close()

    const s2 = HubStore.open(path)
    if (!(s2.db instanceof SqliteDb)) throw new Error('HubStore.open(path) is a SQLite store')
    const raw2 = s2.db.raw
    expect(raw2.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length)
    expect(s2.db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all()).toEqual(schemaBefore)
    expect(s2.devices.get('dev-1')?.tags).toEqual({ site: 'a' })
    // A second migrate() on an up-to-date file executes nothing (re-running CREATE TABLE would throw).
    expect(() => migrate(raw2)).not.toThrow()
    s2.close()
  })

  it('applies only the migrations a file lacks', () => {
    const t = tempDir()
    cleanup = t.cleanup
    const path = join(t.dir, 'hub.db')
    const raw = new Database(path)
    // A file already at the latest version with a marker table: migrate must not touch it.
    raw.exec('CREATE TABLE marker (x INTEGER)')
    raw.pragma(`user_version = ${MIGRATIONS.length}`)
    raw.close()
    const db = openDb({ path })
    expect(tables(db.raw)).toEqual(['marker'])
    db.close()
  })

  it('rolls a failing migration back as a whole', () => {
    const db = new Database(':memory:')
    // The initial schema collides with an existing "devices" table half-way through.
    db.exec('CREATE TABLE versions (x INTEGER)')
    expect(() => migrate(db)).toThrow()
    expect(db.pragma('user_version', { simple: true })).toBe(0)
    expect(tables(db)).toEqual(['versions'])
    db.close()
  })
})
