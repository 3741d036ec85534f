// Deletes for retention [EF-9.3]: each removes at most `limit` rows older
// than a cut-off and answers how many went, so the retention task commits a
// bounded slice per transaction and ingest never waits long.
import type { Db } from './db.js'

/** DELETE of at most `limit` rows of `table` whose `column` is before the cut-off. */
const sliceSql = (db: Db, table: string, column: string) =>
  `DELETE FROM ${table} WHERE ${rowRef(db)} IN (SELECT ${rowRef(db)} FROM ${table} WHERE ${column} < ? LIMIT ?)`

/** A row's physical address for a bounded DELETE: SQLite's rowid, PostgreSQL's ctid. */
const rowRef = (db: Db) => (db.dialect === 'sqlite' ? 'rowid' : 'ctid')

export class RetentionQueries {
  private readonly shadowStmt
  private readonly batchesStmt
  private readonly samplesStmt
  private readonly rollupsStmt
  private readonly versionsStmt
  private readonly rawStmt
  private readonly eventsStmt
  private readonly eventCutStmt
  private readonly eventsBelowStmt

  constructor(db: Db) {
    this.shadowStmt = db.prepare(sliceSql(db, 'telemetry_shadow', 'ts_to'))
    this.batchesStmt = db.prepare(sliceSql(db, 'telemetry_batches', 'ts_to'))
    this.samplesStmt = db.prepare(sliceSql(db, 'samples', 'received_at'))
    this.rollupsStmt = db.prepare(
      'DELETE FROM telemetry_rollups WHERE (model, version, profile, bucket) IN (SELECT model, version, profile, bucket FROM telemetry_rollups WHERE bucket < ? LIMIT ?)',
    )
    this.versionsStmt = db.prepare(
      'SELECT DISTINCT model, version FROM telemetry_rollups UNION SELECT model, version FROM versions',
    )
    // Raw rows go per model version through the (model, version, ts_to) index: ingest pays for no extra index.
    this.rawStmt = db.prepare(
      `DELETE FROM telemetry WHERE ${rowRef(db)} IN (SELECT ${rowRef(db)} FROM telemetry WHERE model = ? AND version = ? AND ts_to < ? LIMIT ?)`,
    )
    // Events go oldest first by id (ids grow with arrival): no index beyond the primary key.
    this.eventsStmt = db.prepare(
      'DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < ? ORDER BY id LIMIT ?)',
    )
    this.eventCutStmt = db.prepare('SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?')
    this.eventsBelowStmt = db.prepare(
      'DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ? ORDER BY id LIMIT ?)',
    )
  }

  /** Device events (deployment progress, refusals) received before `beforeMs`. */
  events(beforeMs: number, limit: number): number {
    return this.eventsStmt.run(beforeMs, limit).changes
  }

  /** The oldest events beyond the newest `keep`, at most `limit` of them. */
  eventsBeyond(keep: number, limit: number): number {
    const cut = this.eventCutStmt.get(keep) as { id: number } | undefined
    return cut ? this.eventsBelowStmt.run(cut.id, limit).changes : 0
  }

  /** Shadow comparisons whose window ended before `beforeMs`. */
  shadow(beforeMs: number, limit: number): number {
    return this.shadowStmt.run(beforeMs, limit).changes
  }

  /** Batch ids whose window ended before `beforeMs`. */
  batches(beforeMs: number, limit: number): number {
    return this.batchesStmt.run(beforeMs, limit).changes
  }

  /** Captured samples received before `beforeMs`. */
  samples(beforeMs: number, limit: number): number {
    return this.samplesStmt.run(beforeMs, limit).changes
  }

  /** Rollup buckets that start before `beforeMs`. */
  rollups(beforeMs: number, limit: number): number {
    return this.rollupsStmt.run(beforeMs, limit).changes
  }

  /** Every model version that may have raw telemetry rows. */
  rawVersions(): { model: string; version: string }[] {
    return this.versionsStmt.all() as { model: string; version: string }[]
  }

  /** Raw telemetry rows of one model version whose window ended before `beforeMs`. */
  raw(model: string, version: string, beforeMs: number, limit: number): number {
    return this.rawStmt.run(model, version, beforeMs, limit).changes
  }
}
