// Agent updates sent [EF-11.9]: one row per agent-update command, moved
// forward by the device's events (received → staged → updated, or a final
// rejected / rolled_back / failed), so a lost command can be resent with its
// original id and a rollout can tell which of its devices confirmed.
import type { Db } from './db.js'

const AGENT_UPDATE_STATES = ['sent', 'received', 'staged', 'updated', 'rejected', 'rolled_back', 'failed'] as const
type AgentUpdateState = (typeof AGENT_UPDATE_STATES)[number]
const FINAL: ReadonlySet<AgentUpdateState> = new Set(['updated', 'rejected', 'rolled_back', 'failed'])
const RANK = new Map<string, number>(AGENT_UPDATE_STATES.map((state, index) => [state, index]))

/** The device event kinds that move an agent update, and the state each moves it to. */
const EVENT_STATE: Readonly<Record<string, AgentUpdateState>> = {
  received: 'received',
  downloaded: 'received',
  staged: 'staged',
  agent_updated: 'updated',
  agent_rolled_back: 'rolled_back',
  rejected: 'rejected',
  failed: 'failed',
}

export interface AgentUpdateRow {
  cmdId: string
  /** One `agent update` request or one rollout dispatch. */
  batch: string
  /** Who sent it: `update` or `rollout:<id>#<wave>`. */
  origin: string
  deviceId: string
  version: string
  arch: string
  rollback: boolean
  deadlineMs: number
  /** The hub address the device downloads the package from. */
  httpBase: string
  state: AgentUpdateState
  code: string | null
  message: string | null
  sentAt: number
  /** When the device reported `staged` (its hand-over began, EF-11.6). */
  stagedAt: number | null
  updatedAt: number
}

interface RawUpdate {
  cmd_id: string
  batch: string
  origin: string
  device_id: string
  version: string
  arch: string
  rollback: number
  deadline_ms: number
  http_base: string
  state: AgentUpdateState
  code: string | null
  message: string | null
  sent_at: number
  staged_at: number | null
  updated_at: number
}

const toRow = (raw: RawUpdate): AgentUpdateRow => ({
  cmdId: raw.cmd_id,
  batch: raw.batch,
  origin: raw.origin,
  deviceId: raw.device_id,
  version: raw.version,
  arch: raw.arch,
  rollback: raw.rollback === 1,
  deadlineMs: raw.deadline_ms,
  httpBase: raw.http_base,
  state: raw.state,
  code: raw.code,
  message: raw.message,
  sentAt: raw.sent_at,
  stagedAt: raw.staged_at,
  updatedAt: raw.updated_at,
})

export class AgentUpdateStore {
  constructor(private readonly db: Db) {}

  insert(row: Omit<AgentUpdateRow, 'state' | 'code' | 'message' | 'stagedAt' | 'updatedAt'>): void {
    this.db
      .prepare(
        `INSERT INTO agent_updates (cmd_id, batch, origin, device_id, version, arch, rollback, deadline_ms, http_base,
           state, sent_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'sent', ?, ?)`,
      )
      .run(
        row.cmdId,
        row.batch,
        row.origin,
        row.deviceId,
        row.version,
        row.arch,
        row.rollback ? 1 : 0,
        row.deadlineMs,
        row.httpBase,
        row.sentAt,
        row.sentAt,
      )
  }

  get(cmdId: string): AgentUpdateRow | undefined {
    const raw = this.db.prepare('SELECT * FROM agent_updates WHERE cmd_id = ?').get(cmdId) as RawUpdate | undefined
    return raw && toRow(raw)
  }

  /**
   * Moves the update `cmdId` names by a device event: never backwards (QoS 1
   * repeats, a resent command's stored result) and never out of a final state.
   * Returns whether it changed; events of other commands change nothing.
   */
  applyEvent(
    ev: { deviceId: string; cmdId?: string; kind: string; code?: string; message?: string },
    now: number,
  ): boolean {
    const next = EVENT_STATE[ev.kind]
    if (!ev.cmdId || !next) return false
    const cur = this.get(ev.cmdId)
    if (cur?.deviceId !== ev.deviceId) return false
    // A rollback report after a confirmation is news (the restored agent runs); other final states stay.
    if (FINAL.has(cur.state) && !(cur.state === 'updated' && next === 'rolled_back')) return false
    if (!FINAL.has(next) && (RANK.get(next) ?? 0) <= (RANK.get(cur.state) ?? 0)) return false
    this.setState(cur.cmdId, next, ev.code ?? null, ev.message ?? null, now)
    return true
  }

  /** Sets a state the hub decided itself (a confirmation seen in the device state, a deadline passed). */
  setState(cmdId: string, state: AgentUpdateState, code: string | null, message: string | null, now: number): void {
    this.db
      .prepare(
        `UPDATE agent_updates SET state = ?, code = ?, message = ?, updated_at = ?,
           staged_at = CASE WHEN ? = 'staged' THEN ? ELSE staged_at END WHERE cmd_id = ?`,
      )
      .run(state, code, message?.slice(0, 2048) ?? null, now, state, now, cmdId)
  }

  /** Open updates of a device (sent, received or staged), oldest first. */
  openForDevice(deviceId: string): AgentUpdateRow[] {
    return (
      this.db
        .prepare(
          "SELECT * FROM agent_updates WHERE device_id = ? AND state IN ('sent', 'received', 'staged') ORDER BY sent_at",
        )
        .all(deviceId) as RawUpdate[]
    ).map(toRow)
  }

  /**
   * Devices a broadcast of agent package `sha256` should wait for [EF-2.7, EF-11.4]:
   * those with an update of it not yet downloaded (sent, received), online ones
   * only unless `offlineToo` (right after a hub start, when states are still arriving).
   */
  openReceivers(sha256: string, offlineToo = false): number {
    const r = this.db
      .prepare(
        `SELECT count(DISTINCT u.device_id) AS n FROM agent_updates u
         JOIN agent_releases r ON r.version = u.version AND r.arch = u.arch JOIN devices d ON d.id = u.device_id
         WHERE r.sha256 = ? AND (d.online = 1 OR ?) AND u.state IN ('sent', 'received')`,
      )
      .get(sha256, offlineToo ? 1 : 0) as { n: number }
    return r.n
  }

  /** Open updates that have not moved since `before` (ms since epoch), oldest first. */
  idleOpen(before: number): AgentUpdateRow[] {
    return (
      this.db
        .prepare(
          "SELECT * FROM agent_updates WHERE state IN ('sent', 'received', 'staged') AND updated_at < ? ORDER BY sent_at",
        )
        .all(before) as RawUpdate[]
    ).map(toRow)
  }

  /** A batch's updates, by device. */
  batch(batch: string): AgentUpdateRow[] {
    return (this.db.prepare('SELECT * FROM agent_updates WHERE batch = ?').all(batch) as RawUpdate[]).map(toRow)
  }

  /** Marks an update as resent now (its idle clock starts again). */
  touch(cmdId: string, now: number): void {
    this.db.prepare('UPDATE agent_updates SET updated_at = ? WHERE cmd_id = ?').run(now, cmdId)
  }
}
