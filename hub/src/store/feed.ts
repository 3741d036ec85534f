// The retraining feed log [EF-9.6]: append-only, one cursor per record
// (AUTOINCREMENT: strictly increasing, never reused after retention). Lines
// are assembled from the stored JSON without re-parsing it, so streaming the
// feed costs one string concatenation per record.
import { EdgeFleetError } from '@edgefleet/shared'
import type { Db } from './db.js'

export const FEED_KINDS = ['sample', 'drift', 'shadow_disagreement', 'label'] as const
export type FeedKind = (typeof FEED_KINDS)[number]

export interface FeedInput {
  model: string
  version: string | null
  kind: FeedKind
  /** Kind-specific members, written after the common ones. */
  body: Record<string, unknown>
}

export interface FeedLine {
  cursor: number
  model: string
  /** The record as one JSON object (no newline). */
  line: string
}

interface RawFeed {
  cursor: number
  model: string
  version: string | null
  kind: string
  ts: number
  body: string
}

function lineOf(r: RawFeed): string {
  const head = `{"cursor":${r.cursor},"kind":"${r.kind}","model":${JSON.stringify(r.model)},"version":${r.version === null ? 'null' : JSON.stringify(r.version)},"at":${r.ts}`
  return r.body.length > 2 ? `${head},${r.body.slice(1)}` : `${head}}`
}

export class FeedStore {
  private readonly ins
  private readonly after
  private readonly afterModel
  private readonly floorStmt

  constructor(private readonly db: Db) {
    this.ins = db.prepare('INSERT INTO feed (model, version, kind, ts, body) VALUES (?,?,?,?,?) RETURNING cursor')
    this.after = db.prepare('SELECT * FROM feed WHERE cursor > ? ORDER BY cursor LIMIT ?')
    this.afterModel = db.prepare('SELECT * FROM feed WHERE model = ? AND cursor > ? ORDER BY cursor LIMIT ?')
    this.floorStmt = db.prepare('SELECT pruned_through AS p FROM feed_meta WHERE id = 1')
  }

  /** Appends a record; call inside the transaction that stores what it describes [EF-9.6]. */
  append(rec: FeedInput, now: number): FeedLine {
    const body = JSON.stringify(rec.body)
    const cursor = (this.ins.get(rec.model, rec.version, rec.kind, now, body) as { cursor: number }).cursor
    return {
      cursor,
      model: rec.model,
      line: lineOf({ cursor, model: rec.model, version: rec.version, kind: rec.kind, ts: now, body }),
    }
  }

  /** Appends one record in its own (IMMEDIATE) transaction, for records that describe nothing else stored. */
  appendOne(rec: FeedInput, now: number): FeedLine {
    return this.db.transaction(() => this.append(rec, now))
  }

  /** Highest cursor removed by retention (0 when nothing was). */
  floor(): number {
    return (this.floorStmt.get() as { p: number }).p
  }

  /**
   * Records with cursor > `since`, oldest first. A `since` below the
   * retention floor would silently skip removed records: refused [EF-9.3].
   */
  page(filter: { model?: string; since?: number; limit: number }): FeedLine[] {
    const floor = this.floor()
    if (filter.since !== undefined && filter.since < floor)
      throw new EdgeFleetError(
        'EF_ERR_FEED_CURSOR_EXPIRED',
        `records up to cursor ${floor} were removed; resume with since=${floor} (or omit since for everything retained)`,
      )
    const since = filter.since ?? 0
    const rows = (
      filter.model ? this.afterModel.all(filter.model, since, filter.limit) : this.after.all(since, filter.limit)
    ) as RawFeed[]
    return rows.map((r) => ({ cursor: r.cursor, model: r.model, line: lineOf(r) }))
  }

  last(): number {
    return (this.db.prepare('SELECT coalesce(max(cursor), 0) AS c FROM feed').get() as { c: number }).c
  }

  count(filter: { model?: string; kind?: FeedKind } = {}): number {
    return (
      this.db
        .prepare(
          'SELECT count(*) AS n FROM feed WHERE (CAST(? AS TEXT) IS NULL OR model = ?) AND (CAST(? AS TEXT) IS NULL OR kind = ?)',
        )
        .get(filter.model ?? null, filter.model ?? null, filter.kind ?? null, filter.kind ?? null) as {
        n: number
      }
    ).n
  }

  /**
   * Removes records appended before `beforeMs`, at most `max` per call, and
   * raises the floor to the highest cursor removed. Everything up to that
   * cursor goes, so the floor is exact [EF-9.3].
   */
  prune(beforeMs: number, max = 10_000): number {
    return this.db.transaction(() => {
      const r = this.db
        .prepare(
          'SELECT max(cursor) AS c FROM (SELECT cursor FROM feed WHERE cursor > ? ORDER BY cursor LIMIT ?) AS head',
        )
        .get(this.floor(), max) as { c: number | null }
      const upTo = this.db
        .prepare('SELECT max(cursor) AS c FROM feed WHERE ts < ? AND cursor <= ?')
        .get(beforeMs, r.c ?? 0) as { c: number | null }
      if (!upTo.c) return 0
      const n = this.db.prepare('DELETE FROM feed WHERE cursor <= ?').run(upTo.c).changes
      this.db.prepare('UPDATE feed_meta SET pruned_through = ? WHERE id = 1 AND pruned_through < ?').run(upTo.c, upTo.c)
      return n
    })
  }
}
