// Fleet capture policies [EF-8.15]: the policies themselves (selector tree
// and body as JSON) and, per device, the list the hub last sent it, which
// decides what a reconnect resends and which devices a delete must reach.
import type { CapturePolicy } from '@edgefleet/shared'
import type { Db } from './db.js'

/** What a fleet policy asks of a device: the device-side policy without the fields the hub fills in. */
export type CapturePolicyBody = Omit<CapturePolicy, 'policyId' | 'model'>

export interface CapturePolicyRow {
  id: string
  name: string
  /** Selector tree in normal form (EF-8.2). */
  selector: unknown
  /** The model it applies to; null for every model without its own policy. */
  model: string | null
  body: CapturePolicyBody
  createdAt: number
  updatedAt: number
}

interface RawPolicy {
  id: string
  name: string
  selector: string
  model: string | null
  body: string
  created_at: number
  updated_at: number
}

const toRow = (r: RawPolicy): CapturePolicyRow => ({
  id: r.id,
  name: r.name,
  selector: JSON.parse(r.selector) as unknown,
  model: r.model,
  body: JSON.parse(r.body) as CapturePolicyBody,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
})

export class CapturePolicyStore {
  constructor(private readonly db: Db) {}

  /** Inserts or replaces a policy (update keeps created_at from the caller's row). */
  put(p: CapturePolicyRow): void {
    this.db
      .prepare(
        `INSERT INTO capture_policies (id, name, selector, model, body, created_at, updated_at) VALUES (?,?,?,?,?,?,?)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, selector = excluded.selector, model = excluded.model,
           body = excluded.body, updated_at = excluded.updated_at`,
      )
      .run(p.id, p.name, JSON.stringify(p.selector), p.model, JSON.stringify(p.body), p.createdAt, p.updatedAt)
  }

  get(id: string): CapturePolicyRow | undefined {
    const r = this.db.prepare('SELECT * FROM capture_policies WHERE id = ?').get(id) as RawPolicy | undefined
    return r && toRow(r)
  }

  /** Oldest first: on a device the first policy for a model wins (EF-8.15). */
  list(): CapturePolicyRow[] {
    return (this.db.prepare('SELECT * FROM capture_policies ORDER BY created_at, id').all() as RawPolicy[]).map(toRow)
  }

  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM capture_policies WHERE id = ?').run(id).changes > 0
  }

  /** The policy list last sent to a device; undefined when fleet policies never reached it. */
  sentTo(deviceId: string): CapturePolicy[] | undefined {
    const r = this.db.prepare('SELECT policies FROM capture_policy_sent WHERE device_id = ?').get(deviceId) as
      { policies: string } | undefined
    return r && (JSON.parse(r.policies) as CapturePolicy[])
  }

  recordSent(deviceId: string, policies: CapturePolicy[], now: number): void {
    this.db
      .prepare(
        `INSERT INTO capture_policy_sent (device_id, policies, sent_at) VALUES (?,?,?)
         ON CONFLICT(device_id) DO UPDATE SET policies = excluded.policies, sent_at = excluded.sent_at`,
      )
      .run(deviceId, JSON.stringify(policies), now)
  }
}
