// Captured samples for the retraining feed [EF-2.9]: stored once per
// (device, sample id), so redelivery and offline resends create no duplicate.
import type { Sample } from '@edgefleet/shared'
import { rowid, type Db } from './db.js'

export interface SampleRow {
  deviceId: string
  sampleId: string
  ts: number
  model: string
  version: string
  reason: string
  confidence: number | null
  bytes: number
  receivedAt: number
}

export class SampleStore {
  private readonly ins

  constructor(private readonly db: Db) {
    this.ins = db.prepare(
      'INSERT INTO samples (device_id, sample_id, ts, model, version, reason, confidence, bytes, payload, received_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING',
    )
  }

  /** Stores a sample once; false when this sample id was already stored (redelivery) [EF-2.9.1]. */
  ingest(sample: Sample, bytes: number, payload: string, now: number): boolean {
    return (
      this.ins.run(
        sample.deviceId,
        sample.sampleId,
        sample.ts,
        sample.model,
        sample.version,
        sample.reason,
        sample.confidence ?? null,
        bytes,
        payload,
        now,
      ).changes > 0
    )
  }

  count(filter: { deviceId?: string; model?: string } = {}): { samples: number; bytes: number } {
    const r = this.db
      .prepare(
        'SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM samples WHERE (CAST(? AS TEXT) IS NULL OR device_id = ?) AND (CAST(? AS TEXT) IS NULL OR model = ?)',
      )
      .get(filter.deviceId ?? null, filter.deviceId ?? null, filter.model ?? null, filter.model ?? null) as {
      n: number
      b: number
    }
    return { samples: r.n, bytes: r.b }
  }

  /** Resumable listing for the retraining feed: rows after `cursor` (rowid), oldest first. */
  list(filter: { model?: string; cursor?: number; limit?: number } = {}): {
    items: (SampleRow & { cursor: number })[]
    next: number | null
  } {
    const limit = filter.limit ?? 100
    const rows = this.db
      .prepare(
        `SELECT ${rowid(this.db)} AS rowid, device_id, sample_id, ts, model, version, reason, confidence, bytes, received_at FROM samples
         WHERE ${rowid(this.db)} > ? AND (CAST(? AS TEXT) IS NULL OR model = ?) ORDER BY ${rowid(this.db)} LIMIT ?`,
      )
      .all(filter.cursor ?? 0, filter.model ?? null, filter.model ?? null, limit) as {
      rowid: number
      device_id: string
      sample_id: string
      ts: number
      model: string
      version: string
      reason: string
      confidence: number | null
      bytes: number
      received_at: number
    }[]
    const items = rows.map((row) => ({
      cursor: row.rowid,
      deviceId: row.device_id,
      sampleId: row.sample_id,
      ts: row.ts,
      model: row.model,
      version: row.version,
      reason: row.reason,
      confidence: row.confidence,
      bytes: row.bytes,
      receivedAt: row.received_at,
    }))
    return { items, next: rows.length === limit ? rows[rows.length - 1].rowid : null }
  }

  /** The stored sample's JSON text, byte for byte as the device sent it [EF-9.8]. */
  payloadText(deviceId: string, sampleId: string): string | undefined {
    return (
      this.db.prepare('SELECT payload FROM samples WHERE device_id = ? AND sample_id = ?').get(deviceId, sampleId) as
        { payload: string } | undefined
    )?.payload
  }

  /** The stored sample as the device sent it. */
  payload(deviceId: string, sampleId: string): Sample | undefined {
    const r = this.db
      .prepare('SELECT payload FROM samples WHERE device_id = ? AND sample_id = ?')
      .get(deviceId, sampleId) as { payload: string } | undefined
    return r ? (JSON.parse(r.payload) as Sample) : undefined
  }
}
