// Deployments and per-device progress, and the device event log.
import { PROTOCOL_VERSION, type DeviceEvent } from '@edgefleet/shared'
import type { Db, Statement } from './db.js'

export const DEVICE_DEPLOY_STATES = [
  // Held by the hub until the device's maintenance window opens or its conditions hold [EF-8.16].
  'waiting_window',
  'waiting_conditions',
  'pending',
  'sent',
  'received',
  'downloading',
  'downloaded',
  'verified',
  'staged',
  'activated',
  'rejected',
  'health_failed',
  'failed',
  'rolled_back',
] as const
export type DeviceDeployState = (typeof DEVICE_DEPLOY_STATES)[number]

export const TERMINAL_STATES: ReadonlySet<string> = new Set([
  'activated',
  'rejected',
  'health_failed',
  'failed',
  'rolled_back',
])
/** Assignments of a plain deployment the hub holds back: no command sent yet [EF-8.16]. */
export const HELD_STATES: ReadonlySet<string> = new Set(['waiting_window', 'waiting_conditions'])
export type HoldState = 'waiting_window' | 'waiting_conditions'
const HELD_SQL = "('waiting_window','waiting_conditions')"
const RANK = new Map<string, number>(DEVICE_DEPLOY_STATES.map((s, i) => [s, i]))

/** An event the hub records in a device's log itself (never sent by a device). */
export interface HubEvent extends Omit<DeviceEvent, 'kind'> {
  /**
   * telemetry_refused: model entries of a batch named a version the device was never sent [EF-2.6.8];
   * health_alert / health_recovered: device stats crossed a profile threshold, or came back [EF-9.12].
   */
  kind: 'telemetry_refused' | 'health_alert' | 'health_recovered'
}

export interface DeploymentRow {
  id: string
  model: string
  version: string
  target: string
  rollback: boolean
  createdAt: number
}

export interface DeploymentDeviceRow {
  deploymentId: string
  deviceId: string
  buildId: number | null
  cmdId: string | null
  state: DeviceDeployState
  bytes: number
  totalBytes: number
  code: string | null
  message: string | null
  updatedAt: number
}

interface RawDD {
  deployment_id: string
  device_id: string
  build_id: number | null
  cmd_id: string | null
  state: DeviceDeployState
  bytes: number
  total_bytes: number
  code: string | null
  message: string | null
  updated_at: number
}

const ddRow = (raw: RawDD): DeploymentDeviceRow => ({
  deploymentId: raw.deployment_id,
  deviceId: raw.device_id,
  buildId: raw.build_id,
  cmdId: raw.cmd_id,
  state: raw.state,
  bytes: raw.bytes,
  totalBytes: raw.total_bytes,
  code: raw.code,
  message: raw.message,
  updatedAt: raw.updated_at,
})

export class DeploymentStore {
  /** Statements of the per-message paths (device events arrive several times a second per downloading device): prepared once. */
  private readonly statements = new Map<string, Statement>()

  constructor(
    private readonly db: Db,
    /** Told each device a new deployment assigns (the telemetry version check's cache, EF-2.6.8). */
    private readonly onAssigned: (deviceId: string) => void = () => undefined,
  ) {}

  private prepared(sql: string): Statement {
    let st = this.statements.get(sql)
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)))
    return st
  }

  create(
    deployment: DeploymentRow,
    devices: {
      deviceId: string
      buildId: number | null
      cmdId: string | null
      state: DeviceDeployState
      code?: string
      message?: string
    }[],
  ): void {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO deployments (id, model, version, target, rollback, created_at) VALUES (?,?,?,?,?,?)')
        .run(
          deployment.id,
          deployment.model,
          deployment.version,
          deployment.target,
          deployment.rollback ? 1 : 0,
          deployment.createdAt,
        )
      const ins = this.prepared(
        'INSERT INTO deployment_devices (deployment_id, device_id, build_id, cmd_id, state, code, message, updated_at) VALUES (?,?,?,?,?,?,?,?)',
      )
      for (const x of devices)
        ins.run(
          deployment.id,
          x.deviceId,
          x.buildId,
          x.cmdId,
          x.state,
          x.code ?? null,
          x.message ?? null,
          deployment.createdAt,
        )
    })
    for (const x of devices) this.onAssigned(x.deviceId)
  }

  count(): number {
    return (this.prepared('SELECT count(*) AS n FROM deployments').get() as { n: number }).n
  }

  get(id: string): DeploymentRow | undefined {
    const raw = this.prepared('SELECT * FROM deployments WHERE id = ?').get(id) as
      { id: string; model: string; version: string; target: string; rollback: number; created_at: number } | undefined
    return (
      raw && {
        id: raw.id,
        model: raw.model,
        version: raw.version,
        target: raw.target,
        rollback: raw.rollback === 1,
        createdAt: raw.created_at,
      }
    )
  }

  list(limit = 100, offset = 0): (DeploymentRow & { counts: Record<string, number> })[] {
    const rows = this.prepared('SELECT * FROM deployments ORDER BY created_at DESC, id LIMIT ? OFFSET ?').all(
      limit,
      offset,
    ) as {
      id: string
      model: string
      version: string
      target: string
      rollback: number
      created_at: number
    }[]
    const countStmt = this.prepared(
      'SELECT state, count(*) AS n FROM deployment_devices WHERE deployment_id = ? GROUP BY state',
    )
    return rows.map((r) => ({
      id: r.id,
      model: r.model,
      version: r.version,
      target: r.target,
      rollback: r.rollback === 1,
      createdAt: r.created_at,
      counts: Object.fromEntries((countStmt.all(r.id) as { state: string; n: number }[]).map((c) => [c.state, c.n])),
    }))
  }

  devices(deploymentId: string): DeploymentDeviceRow[] {
    return (
      this.db
        .prepare('SELECT * FROM deployment_devices WHERE deployment_id = ? ORDER BY device_id')
        .all(deploymentId) as RawDD[]
    ).map(ddRow)
  }

  /** State and code of the deployment's assignments that reached a terminal state (activated included). */
  finished(deploymentId: string): Map<string, { state: string; code: string | null }> {
    const marks = [...TERMINAL_STATES].map(() => '?').join(',')
    const rows = this.prepared(
      `SELECT device_id, state, code FROM deployment_devices WHERE deployment_id = ? AND state IN (${marks})`,
    ).all(deploymentId, ...TERMINAL_STATES) as { device_id: string; state: string; code: string | null }[]
    return new Map(rows.map((r) => [r.device_id, { state: r.state, code: r.code }]))
  }

  /** Open (non-terminal) assignments of a device, oldest first: resent when the device reconnects. */
  openForDevice(deviceId: string): DeploymentDeviceRow[] {
    const rows = this.prepared(
      `SELECT dd.* FROM deployment_devices dd JOIN deployments d ON d.id = dd.deployment_id
         WHERE dd.device_id = ? AND dd.state NOT IN ('activated','rejected','health_failed','failed','rolled_back') ORDER BY d.created_at`,
    ).all(deviceId) as RawDD[]
    return rows.map(ddRow)
  }

  /** Open assignments of online devices not updated since `before` (ms): the reconciler resends them [EF-2.1.4]. */
  idleOpen(before: number, limit = 500): DeploymentDeviceRow[] {
    const rows = this.db
      .prepare(
        `SELECT dd.* FROM deployment_devices dd JOIN devices d ON d.id = dd.device_id
         WHERE d.online = 1 AND dd.updated_at < ? AND dd.state NOT IN ('activated','rejected','health_failed','failed','rolled_back')
         AND dd.state NOT IN ${HELD_SQL}
         ORDER BY dd.updated_at LIMIT ?`,
      )
      .all(before, limit) as RawDD[]
    return rows.map(ddRow)
  }

  /** Held assignments [EF-8.16], longest unchanged first: the hold scheduler looks at each on its tick. */
  held(limit = 1000): DeploymentDeviceRow[] {
    const rows = this.prepared(
      `SELECT * FROM deployment_devices WHERE state IN ${HELD_SQL} ORDER BY updated_at, deployment_id, device_id LIMIT ?`,
    ).all(limit) as RawDD[]
    return rows.map(ddRow)
  }

  /**
   * Moves a held assignment to another hold (with why, for operators) or to `pending` (its command is
   * sent next). False when it is no longer held: a device's report or a newer deployment ended it.
   */
  setHold(
    deploymentId: string,
    deviceId: string,
    state: HoldState | 'pending',
    message: string | null,
    now: number,
  ): boolean {
    const r = this.prepared(
      `UPDATE deployment_devices SET state = ?, message = ?, updated_at = ? WHERE deployment_id = ? AND device_id = ? AND state IN ${HELD_SQL}`,
    ).run(state, message, now, deploymentId, deviceId)
    return r.changes > 0
  }

  /**
   * Ends held assignments of `model` on these devices as `failed` with EF_ERR_DEPLOY_SUPERSEDED: a newer
   * deployment of the model replaces them, so an older version is never released after it [EF-8.16].
   */
  supersedeHeld(model: string, deviceIds: readonly string[], byDeployment: string, now: number): number {
    const st = this.prepared(
      `UPDATE deployment_devices SET state = 'failed', code = 'EF_ERR_DEPLOY_SUPERSEDED', message = ?, updated_at = ?
       WHERE device_id = ? AND state IN ${HELD_SQL} AND deployment_id IN (SELECT id FROM deployments WHERE model = ?)`,
    )
    let ended = 0
    this.db.transaction(() => {
      for (const id of deviceIds) ended += st.run(`superseded by deployment ${byDeployment}`, now, id, model).changes
    })
    return ended
  }

  /** Records why an assignment waits (a `deferred` event's code) without moving its state [EF-2.4.1]. */
  setNote(deploymentId: string, deviceId: string, code: string | null, message: string | null, now: number): void {
    this.db
      .prepare(
        `UPDATE deployment_devices SET code = ?, message = ?, updated_at = ? WHERE deployment_id = ? AND device_id = ?
         AND state NOT IN ('activated','rejected','health_failed','failed','rolled_back')`,
      )
      .run(code, message, now, deploymentId, deviceId)
  }

  /** Devices (online ones, or all with `offlineToo`) that still have to download this artifact for an open assignment. */
  openReceivers(artifact: string, offlineToo = false): number {
    const r = this.db
      .prepare(
        `SELECT count(DISTINCT dd.device_id) AS n FROM deployment_devices dd JOIN builds b ON b.id = dd.build_id JOIN devices d ON d.id = dd.device_id
         WHERE b.artifact = ? AND (d.online = 1 OR ?) AND dd.state IN ('pending','sent','received','downloading')`,
      )
      .get(artifact, offlineToo ? 1 : 0) as { n: number }
    return r.n
  }

  setSent(deploymentId: string, deviceId: string, cmdId: string, now: number): void {
    this.prepared(
      "UPDATE deployment_devices SET cmd_id = ?, state = CASE WHEN state = 'pending' THEN 'sent' ELSE state END, updated_at = ? WHERE deployment_id = ? AND device_id = ?",
    ).run(cmdId, now, deploymentId, deviceId)
  }

  /**
   * Applies a device event to its assignment. States only move forward, so a
   * late progress event never undoes a result; a failure can end any state.
   */
  applyEvent(ev: DeviceEvent, now: number): boolean {
    if (!ev.deploymentId) return false
    const cur = this.prepared('SELECT * FROM deployment_devices WHERE deployment_id = ? AND device_id = ?').get(
      ev.deploymentId,
      ev.deviceId,
    ) as RawDD | undefined
    if (!cur) return false
    const next = ev.kind as string
    if (!RANK.has(next)) return false
    if (TERMINAL_STATES.has(cur.state)) return false
    if (!TERMINAL_STATES.has(next) && (RANK.get(next) ?? 0) < (RANK.get(cur.state) ?? 0)) return false
    this.prepared(
      'UPDATE deployment_devices SET state = ?, bytes = COALESCE(?, bytes), total_bytes = COALESCE(?, total_bytes), code = ?, message = ?, updated_at = ? WHERE deployment_id = ? AND device_id = ?',
    ).run(
      next,
      ev.bytes ?? null,
      ev.totalBytes ?? null,
      ev.code ?? null,
      ev.message ?? null,
      now,
      ev.deploymentId,
      ev.deviceId,
    )
    return true
  }

  /** Progress-only update (downloading events) without a state change. */
  setProgress(deploymentId: string, deviceId: string, bytes: number, total: number, now: number): void {
    this.prepared(
      'UPDATE deployment_devices SET bytes = ?, total_bytes = ?, updated_at = ? WHERE deployment_id = ? AND device_id = ?',
    ).run(bytes, total, now, deploymentId, deviceId)
  }

  insertEvent(ev: DeviceEvent | HubEvent, now: number): void {
    this.prepared(
      'INSERT INTO events (device_id, ts, kind, deployment_id, cmd_id, model, version, code, message, received_bytes, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    ).run(
      ev.deviceId,
      ev.ts,
      ev.kind,
      ev.deploymentId ?? null,
      ev.cmdId ?? null,
      ev.model ?? null,
      ev.version ?? null,
      ev.code ?? null,
      ev.message ?? null,
      ev.receivedBytes ?? null,
      now,
    )
  }

  eventsForDevice(deviceId: string, limit = 100): (DeviceEvent | HubEvent)[] {
    const rows = this.prepared('SELECT * FROM events WHERE device_id = ? ORDER BY id DESC LIMIT ?').all(
      deviceId,
      limit,
    ) as {
      device_id: string
      ts: number
      kind: (DeviceEvent | HubEvent)['kind']
      deployment_id: string | null
      cmd_id: string | null
      model: string | null
      version: string | null
      code: string | null
      message: string | null
      received_bytes: number | null
    }[]
    return rows.map((row) => ({
      v: PROTOCOL_VERSION,
      deviceId: row.device_id,
      ts: row.ts,
      kind: row.kind,
      ...(row.deployment_id ? { deploymentId: row.deployment_id } : {}),
      ...(row.cmd_id ? { cmdId: row.cmd_id } : {}),
      ...(row.model ? { model: row.model } : {}),
      ...(row.version ? { version: row.version } : {}),
      ...(row.code ? { code: row.code } : {}),
      ...(row.message ? { message: row.message } : {}),
      ...(row.received_bytes !== null ? { receivedBytes: row.received_bytes } : {}),
    }))
  }
}
