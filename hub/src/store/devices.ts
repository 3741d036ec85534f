// Device rows: provisioning, credentials, lifecycle status and last known state.
// Only an `active` device has credentials [EF-1.3.3]: every broker path (embedded
// aedes, Mosquitto's password file, certificate identities) asks `secretHash` or
// `brokerHashes`, which know nothing of disabled or removed devices.
import type { DeviceState } from '@edgefleet/shared'
import { rowid, type Db } from './db.js'

/** A device tag's key: what provisioning accepts, and what targets and selectors may name. */
export const TAG_KEY = /^[A-Za-z0-9._-]{1,64}$/

/** `removed` is final: the row keeps the device's history, the id never authenticates again [EF-1.3.3]. */
export type DeviceStatus = 'active' | 'disabled' | 'removed'

export interface DeviceRow {
  id: string
  status: DeviceStatus
  /** When the status last changed (null: active since provisioning). */
  statusAt: number | null
  profile: string
  tags: Record<string, string>
  createdAt: number
  online: boolean
  lastSeen: number | null
  state: DeviceState | null
}

interface RawDevice {
  id: string
  profile: string
  tags: string
  secret_hash: string
  created_at: number
  online: number
  last_seen: number | null
  state: string | null
  status: DeviceStatus
  status_at: number | null
}

const toRow = (raw: RawDevice): DeviceRow => ({
  id: raw.id,
  status: raw.status,
  statusAt: raw.status_at,
  profile: raw.profile,
  tags: JSON.parse(raw.tags) as Record<string, string>,
  createdAt: raw.created_at,
  online: raw.online === 1,
  lastSeen: raw.last_seen,
  state: raw.state ? (JSON.parse(raw.state) as DeviceState) : null,
})

/** See DeviceStore.fleetMark. */
export interface FleetMark {
  maxRowid: number
  maxStatusAt: number
}

/** One row of a bulk import, credentials already hashed. */
export interface NewDevice {
  id: string
  profile: string
  tags: Record<string, string>
  secretHash: string
  brokerHash: string | null
  /** bcrypt of the secret for a NATS cluster [EF-4.12]. */
  natsHash?: string | null
}

export class DeviceStore {
  private readonly insertStmt
  private readonly getStmt
  private readonly listStmt
  private readonly stateStmt
  private readonly secretStmt
  private readonly offlineAllStmt
  private readonly fleetMarkStmt
  private readonly activeSinceStmt

  constructor(private readonly db: Db) {
    this.insertStmt = db.prepare(
      'INSERT INTO devices (id, profile, tags, secret_hash, created_at, broker_hash, nats_hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
    )
    this.getStmt = db.prepare('SELECT * FROM devices WHERE id = ?')
    this.listStmt = db.prepare('SELECT * FROM devices ORDER BY id LIMIT ? OFFSET ?')
    this.stateStmt = db.prepare('UPDATE devices SET online = ?, last_seen = ?, state = COALESCE(?, state) WHERE id = ?')
    this.secretStmt = db.prepare("SELECT secret_hash FROM devices WHERE id = ? AND status = 'active'")
    this.offlineAllStmt = db.prepare('UPDATE devices SET online = 0')
    this.fleetMarkStmt = db.prepare(
      `SELECT coalesce(max(${rowid(db)}), 0) AS maxRowid, coalesce(max(status_at), 0) AS maxStatusAt FROM devices`,
    )
    this.activeSinceStmt = db.prepare(
      `SELECT * FROM devices WHERE status = 'active' AND (${rowid(db)} > ? OR status_at >= ?) ORDER BY id`,
    )
  }

  /** `brokerHash`: the secret in Mosquitto's password-file format; `natsHash`: bcrypt, for a NATS cluster [EF-4.12]. */
  insert(
    id: string,
    profile: string,
    tags: Record<string, string>,
    secretHash: string,
    now: number,
    brokerHash: string | null = null,
    natsHash: string | null = null,
  ): boolean {
    const r = this.insertStmt.run(id, profile, JSON.stringify(tags), secretHash, now, brokerHash, natsHash)
    return r.changes === 1
  }

  /**
   * Inserts many devices in one transaction: all or none. Throws the first
   * database error (e.g. a primary-key clash) after rolling everything back.
   */
  insertMany(rows: NewDevice[], now: number): void {
    this.db.transaction(() => {
      for (const r of rows)
        this.insertStmt.run(
          r.id,
          r.profile,
          JSON.stringify(r.tags),
          r.secretHash,
          now,
          r.brokerHash,
          r.natsHash ?? null,
        )
    })
  }

  /**
   * Where the fleet's membership stands: the newest row (devices are never
   * deleted, so rowids only grow) and the latest status change. Two integers
   * that change exactly when a device is provisioned, enabled, disabled or removed.
   */
  fleetMark(): FleetMark {
    return this.fleetMarkStmt.get() as FleetMark
  }

  /**
   * Active devices provisioned or re-enabled after `since` (all active ones
   * without it): the rollout engine's joiners, without reading the whole fleet each tick.
   */
  activeSince(since?: FleetMark): DeviceRow[] {
    const rows = since
      ? this.activeSinceStmt.all(since.maxRowid, since.maxStatusAt)
      : this.db.prepare("SELECT * FROM devices WHERE status = 'active' ORDER BY id").all()
    return (rows as RawDevice[]).map(toRow)
  }

  /** Status of each id already provisioned (removed ones included); ids not in the map are free. */
  statuses(ids: string[]): Map<string, DeviceStatus> {
    const out = new Map<string, DeviceStatus>()
    const stmt = this.db.prepare('SELECT status FROM devices WHERE id = ?')
    for (const id of ids) {
      const r = stmt.get(id) as { status: DeviceStatus } | undefined
      if (r) out.set(id, r.status)
    }
    return out
  }

  get(id: string): DeviceRow | undefined {
    const r = this.getStmt.get(id) as RawDevice | undefined
    return r && toRow(r)
  }

  list(limit = 1000, offset = 0): DeviceRow[] {
    return (this.listStmt.all(limit, offset) as RawDevice[]).map(toRow)
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM devices').get() as { n: number }).n
  }

  /** (device id, Mosquitto password hash) of every active device that has one [EF-1.3.3]. */
  brokerHashes(): { id: string; hash: string }[] {
    return this.db
      .prepare(
        "SELECT id, broker_hash AS hash FROM devices WHERE broker_hash IS NOT NULL AND status = 'active' ORDER BY id",
      )
      .all() as { id: string; hash: string }[]
  }

  /** (device id, bcrypt hash) of every active device that has one, for a NATS cluster [EF-4.12]. */
  natsHashes(): { id: string; hash: string }[] {
    return this.db
      .prepare(
        "SELECT id, nats_hash AS hash FROM devices WHERE nats_hash IS NOT NULL AND status = 'active' ORDER BY id",
      )
      .all() as { id: string; hash: string }[]
  }

  /** sha256 hex of an active device's secret; undefined for unknown, disabled and removed devices [EF-1.3.3]. */
  secretHash(id: string): string | undefined {
    return (this.secretStmt.get(id) as { secret_hash: string } | undefined)?.secret_hash
  }

  /**
   * Moves a device between active and disabled, or removes it for good (its
   * secret hashes are wiped as well). False when the device is unknown or removed.
   */
  setStatus(id: string, status: DeviceStatus, now: number): boolean {
    const wipe = status === 'removed' ? ", secret_hash = '', broker_hash = NULL, nats_hash = NULL" : ''
    return (
      this.db
        .prepare(`UPDATE devices SET status = ?, status_at = ?${wipe} WHERE id = ? AND status != 'removed'`)
        .run(status, now, id).changes === 1
    )
  }

  /** Replaces a device's secret (the old one stops working at once); false when unknown or removed. */
  replaceSecret(id: string, secretHash: string, brokerHash: string | null, natsHash: string | null = null): boolean {
    return (
      this.db
        .prepare(
          "UPDATE devices SET secret_hash = ?, broker_hash = ?, nats_hash = ? WHERE id = ? AND status != 'removed'",
        )
        .run(secretHash, brokerHash, natsHash, id).changes === 1
    )
  }

  /** Records a state message; an offline will keeps the last full state. */
  setState(id: string, state: DeviceState, now: number): boolean {
    const full = state.online && state.models !== undefined ? JSON.stringify(state) : null
    return this.stateStmt.run(state.online ? 1 : 0, now, full, id).changes === 1
  }

  /** On hub start nothing is known to be online until its state arrives again. */
  markAllOffline(): void {
    this.offlineAllStmt.run()
  }

  profilesInFleet(): string[] {
    return (
      this.db.prepare('SELECT DISTINCT profile FROM devices ORDER BY profile').all() as { profile: string }[]
    ).map((r) => r.profile)
  }

  /** Active devices matching a simple selector: a disabled or removed device receives no deployment. */
  select(sel: { profile?: string; tag?: [string, string]; device?: string }): DeviceRow[] {
    if (sel.device) {
      const d = this.get(sel.device)
      return d?.status === 'active' ? [d] : []
    }
    if (sel.profile)
      return (
        this.db
          .prepare("SELECT * FROM devices WHERE profile = ? AND status = 'active' ORDER BY id")
          .all(sel.profile) as RawDevice[]
      ).map(toRow)
    if (sel.tag) {
      // Keys are validated (TAG_KEY) wherever they enter, so the JSON path needs no escaping; anything else matches nothing.
      if (!TAG_KEY.test(sel.tag[0])) return []
      const [sql, path] =
        this.db.dialect === 'sqlite'
          ? ['json_extract(tags, ?)', `$."${sel.tag[0]}"`]
          : ['CAST(tags AS JSONB) ->> CAST(? AS TEXT)', sel.tag[0]]
      const rows = this.db
        .prepare(`SELECT * FROM devices WHERE ${sql} = ? AND status = 'active' ORDER BY id`)
        .all(path, sel.tag[1]) as RawDevice[]
      return rows.map(toRow)
    }
    return []
  }
}
