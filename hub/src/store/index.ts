// The hub's persistent state, one object per table group over one SQLite file.
import { openDb, type Db } from './db.js'
import { openPostgres } from './pg/bridge.js'
import { DeviceStore } from './devices.js'
import { RegistryStore } from './registry.js'
import { DeploymentStore } from './deployments.js'
import { TelemetryStore } from './telemetry.js'
import { TokenStore } from './tokens.js'
import { RolloutStore } from './rollouts.js'
import { RolloutTelemetry } from './rollout-telemetry.js'
import { ConsoleQueries } from './series.js'
import { GaugeQueries } from './gauges.js'
import { RetentionQueries } from './retention.js'
import { SentVersions } from './sent-versions.js'
import { HealthStore } from './health.js'
import { CapturePolicyStore } from './capture-policies.js'
import { AgentReleaseStore } from './agent-releases.js'
import { AgentUpdateStore } from './agent-updates.js'

export * from './devices.js'
export * from './registry.js'
export * from './deployments.js'
export * from './telemetry.js'
export * from './tokens.js'
export * from './rollouts.js'
export * from './rollout-telemetry.js'
export * from './sent-versions.js'
export * from './capture-policies.js'
export * from './agent-releases.js'
export * from './agent-updates.js'
export { isDuplicateKey, type Db } from './db.js'

export class HubStore {
  readonly devices: DeviceStore
  readonly registry: RegistryStore
  readonly deployments: DeploymentStore
  readonly telemetry: TelemetryStore
  readonly tokens: TokenStore
  readonly rollouts: RolloutStore
  readonly rolloutTelemetry: RolloutTelemetry
  readonly console: ConsoleQueries
  readonly gauges: GaugeQueries
  readonly retention: RetentionQueries
  readonly sentVersions: SentVersions
  /** Device health from telemetry batches [EF-9.12]. */
  readonly health: HealthStore
  /** Fleet capture policies and what each device was last sent [EF-8.15]. */
  readonly capturePolicies: CapturePolicyStore
  /** Signed agent packages per version and architecture [EF-11.3]. */
  readonly agentReleases: AgentReleaseStore
  /** Agent-update commands sent and how far each got [EF-11.9]. */
  readonly agentUpdates: AgentUpdateStore

  /**
   * The raw SQLite handle: the store's own modules and tests only. Nothing
   * outside hub/src/store writes SQL; code elsewhere calls named methods.
   */
  constructor(readonly db: Db) {
    this.devices = new DeviceStore(db)
    this.registry = new RegistryStore(db)
    this.sentVersions = new SentVersions(db)
    this.deployments = new DeploymentStore(db, (deviceId) => this.sentVersions.forget(deviceId))
    this.telemetry = new TelemetryStore(db)
    this.tokens = new TokenStore(db)
    this.rollouts = new RolloutStore(db)
    this.rolloutTelemetry = new RolloutTelemetry(db)
    this.console = new ConsoleQueries(db)
    this.gauges = new GaugeQueries(db)
    this.retention = new RetentionQueries(db)
    this.health = new HealthStore(db)
    this.capturePolicies = new CapturePolicyStore(db)
    this.agentReleases = new AgentReleaseStore(db)
    this.agentUpdates = new AgentUpdateStore(db)
  }

  /** Where a second connection opens this database: the SQLite file or the PostgreSQL URL; undefined in memory (tests). */
  get location(): string | undefined {
    return this.db.location
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction (takes the write lock first: the
   * telemetry writer thread commits concurrently, see db.ts) and returns its result.
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)
  }

  /** `location`: a SQLite file path, or a postgresql:// (postgres://) URL. */
  static open(location: string): HubStore {
    return new HubStore(openDatabase(location))
  }

  close(): void {
    this.db.close()
  }
}

/** Opens `location`: a postgresql:// (postgres://) URL, else a SQLite file path (':memory:' for tests). */
export function openDatabase(location: string): Db {
  return /^postgres(ql)?:\/\//.test(location) ? openPostgres(location) : openDb({ path: location })
}
