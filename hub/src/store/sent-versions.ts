// Which model versions each device may report telemetry for [EF-2.6.8]: the
// versions of its deployment assignments (sent, or about to be) and the
// versions its last state reports loaded (active or previous). Ingest asks
// once per model entry of every batch, so this is an in-memory cache per
// device: a hit is a Set lookup; a device's set is loaded with one query
// when first needed, again when a deployment or a state message concerns
// the device (forget), and at most once per `missRefreshMs` on a miss.
import type { DeviceState } from '@edgefleet/shared'
import type { Db } from './db.js'

export interface SentVersionsOptions {
  /** After a miss, the device's set is read again at most this often (ms); deploys and states refresh at once. */
  missRefreshMs: number
}

const defaultSentVersionsOptions: SentVersionsOptions = { missRefreshMs: 60_000 }

interface DeviceVersions {
  /** model → versions: nested so a hit builds no key string. */
  keys: Map<string, Set<string>>
  loadedAt: number
  /** Refused keys already reported (one event per key per load). */
  reported: Set<string>
}

export type SentVerdict = 'sent' | 'refused' | 'refused-first'

export class SentVersions {
  private readonly byDevice = new Map<string, DeviceVersions>()
  private readonly assignedStmt
  private readonly stateStmt
  readonly options: SentVersionsOptions
  /** Model entries refused since start [EF-2.6.8], for /metrics. */
  readonly stats = { refusedEntries: 0 }

  constructor(db: Db, options: Partial<SentVersionsOptions> = {}) {
    this.options = Object.freeze({ ...defaultSentVersionsOptions, ...options })
    this.assignedStmt = db.prepare(
      'SELECT DISTINCT d.model, d.version FROM deployment_devices dd JOIN deployments d ON d.id = dd.deployment_id WHERE dd.device_id = ?',
    )
    this.stateStmt = db.prepare('SELECT state FROM devices WHERE id = ?')
  }

  /**
   * Whether `deviceId` was sent `model@version`. 'refused-first' is a refusal
   * not yet reported since the device's set was loaded (the caller records an event).
   */
  check(deviceId: string, model: string, version: string, now: number): SentVerdict {
    let entry = this.byDevice.get(deviceId)
    if (entry?.keys.get(model)?.has(version)) return 'sent'
    if (!entry || now - entry.loadedAt >= this.options.missRefreshMs) {
      entry = this.load(deviceId, now)
      if (entry.keys.get(model)?.has(version)) return 'sent'
    }
    this.stats.refusedEntries++
    const key = `${model}@${version}`
    if (entry.reported.has(key)) return 'refused'
    entry.reported.add(key)
    return 'refused-first'
  }

  /** Drops a device's cached set: a deployment or state concerning it changed what it was sent. */
  forget(deviceId: string): void {
    this.byDevice.delete(deviceId)
  }

  /** The device's cached versions by model, without a query (undefined when not loaded): for a batch's hot path. */
  cached(deviceId: string): ReadonlyMap<string, ReadonlySet<string>> | undefined {
    return this.byDevice.get(deviceId)?.keys
  }

  private load(deviceId: string, now: number): DeviceVersions {
    const keys = new Map<string, Set<string>>()
    const add = (model: string, version: string) => {
      let vs = keys.get(model)
      if (!vs) keys.set(model, (vs = new Set()))
      vs.add(version)
    }
    for (const r of this.assignedStmt.all(deviceId) as { model: string; version: string }[]) add(r.model, r.version)
    const row = this.stateStmt.get(deviceId) as { state: string | null } | undefined
    if (row?.state) {
      for (const m of (JSON.parse(row.state) as DeviceState).models ?? []) {
        add(m.name, m.version)
        if (m.previous) add(m.name, m.previous)
      }
    }
    const e = { keys, loadedAt: now, reported: new Set<string>() }
    this.byDevice.set(deviceId, e)
    return e
  }
}
