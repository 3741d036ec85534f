// The hub's persistent state, one object per table group over one SQLite file.
import { openDb, type Db } from './db.js'
import { DeviceStore } from './devices.js'
import { RegistryStore } from './registry.js'
import { DeploymentStore } from './deployments.js'
import { TelemetryStore } from './telemetry.js'
import { TokenStore } from './tokens.js'
import { RolloutStore } from './rollouts.js'
import { RolloutTelemetry } from './rollout-telemetry.js'

export * from './devices.js'
export * from './registry.js'
export * from './deployments.js'
export * from './telemetry.js'
export * from './tokens.js'
export * from './rollouts.js'
export * from './rollout-telemetry.js'
export type { Db } from './db.js'

export class HubStore {
  readonly devices: DeviceStore
  readonly registry: RegistryStore
  readonly deployments: DeploymentStore
  readonly telemetry: TelemetryStore
  readonly tokens: TokenStore
  readonly rollouts: RolloutStore
  readonly rolloutTelemetry: RolloutTelemetry

  constructor(readonly db: Db) {
    this.devices = new DeviceStore(db)
    this.registry = new RegistryStore(db)
    this.deployments = new DeploymentStore(db)
    this.telemetry = new TelemetryStore(db)
    this.tokens = new TokenStore(db)
    this.rollouts = new RolloutStore(db)
    this.rolloutTelemetry = new RolloutTelemetry(db)
  }

  static open(path: string): HubStore {
    return new HubStore(openDb({ path }))
  }

  close(): void {
    this.db.close()
  }
}
