// Counts the /metrics scrape reads at scrape time [EF-8.12]: devices by
// profile and online state, deployment assignments by state.
import type { Db } from './db.js'

export interface DeviceGauge {
  profile: string
  online: boolean
  n: number
}

export class GaugeQueries {
  private readonly devicesStmt
  private readonly assignmentsStmt

  constructor(db: Db) {
    this.devicesStmt = db.prepare('SELECT profile, online, count(*) AS n FROM devices GROUP BY profile, online')
    this.assignmentsStmt = db.prepare('SELECT state, count(*) AS n FROM deployment_devices GROUP BY state')
  }

  devicesByProfileAndOnline(): DeviceGauge[] {
    return (this.devicesStmt.all() as { profile: string; online: number; n: number }[]).map((r) => ({
      profile: r.profile,
      online: r.online !== 0,
      n: r.n,
    }))
  }

  deploymentDevicesByState(): { state: string; n: number }[] {
    return this.assignmentsStmt.all() as { state: string; n: number }[]
  }
}
