// The shapes of the hub's answers the console reads (the API's TypeBox
// schemas in hub/src/api/routes are the source; only the fields used here).
interface ModelRef {
  name: string
  version: string
  precision: string
  slot: string
}
export interface Device {
  id: string
  status: string
  profile: string
  tags: Record<string, string>
  online: boolean
  lastSeen: number | null
  models: ModelRef[]
  agentVersion: string | null
}
export interface DeviceEvent {
  ts: number
  kind: string
  model?: string
  version?: string
  code?: string
  message?: string
}
export interface HealthPoint {
  ts: number
  rssBytes?: number
  cpuLoad?: number
  freeStorageBytes?: number
  temperatureC?: number
}
export interface DeviceHealth {
  agentVersion: string | null
  conditions: { network: string | null; power: string | null; idle: boolean | null }
  providers: Record<string, string>
  lastTelemetry: number | null
  latest: HealthPoint | null
  thresholds: { maxRssMb?: number; maxCpuLoad?: number; minFreeStorageMb?: number; maxTemperatureC?: number } | null
  breaches: { metric: string; text: string }[]
  series: HealthPoint[]
}
interface Distribution {
  n: number
  p50: number | null
  p95: number | null
  bins: { lo: number; hi: number; n: number }[]
}
export interface FleetHealth {
  devices: number
  metrics: Record<'rssBytes' | 'cpuLoad' | 'freeStorageBytes' | 'temperatureC', Distribution>
  alerting: { deviceId: string; metrics: string[] }[]
}
export interface FleetSummary {
  total: number
  online: number
  byProfile: { profile: string; online: number; offline: number }[]
  byVersion: { model: string; version: string; devices: number }[]
}
export interface SeriesPoint {
  ts: number
  version: string
  requests: number
  errors: number
  p50Ms: number | null
  p95Ms: number | null
  confidence: number[]
}
export interface Build {
  profile: string
  status: string
  precision: string | null
  sizeBytes: number | null
  report: Record<string, unknown> | null
  errorCode: string | null
  error: string | null
}
interface ModelVersion {
  model: string
  version: string
  size: number
  parent: string | null
  runId: string | null
  createdAt: number
}
export interface VersionView {
  version: ModelVersion
  builds: Build[]
}
export interface ModelList {
  items: { name: string; versions: string[] }[]
}
interface Wave {
  index: number
  percent: number | null
  count: number | null
  soakMs: number
  devices: number
  counts: Record<string, number>
}
export interface Rollout {
  id: string
  model: string
  version: string
  selectorText: string
  state: string
  phase: string
  wave: number
  waves: Wave[]
  devices: number
  totals: Record<string, number>
  reason: string | null
  createdAt: number
  spec: { gates: Record<string, number | null> }
}
export interface Deployment {
  id: string
  model: string
  version: string
  target: string
  rollback: boolean
  createdAt: number
  counts: Record<string, number>
  done: boolean
}
export interface DeploymentDevice {
  deviceId: string
  state: string
  bytes: number
  totalBytes: number
  code: string | null
  message: string | null
  online: boolean
  /** Held for its window [EF-8.16]: when the window next opens (ms), null when not within 8 days. */
  windowOpensAt?: number | null
}
export interface Token {
  id: string
  name: string
  role: string
  createdAt: number
  lastUsedAt: number | null
  revokedAt: number | null
  expiresAt: number | null
}
export interface Provisioned {
  id: string
  profile: string
  secret: string
  hubPublicKey: string
  mqttUrl: string
  tls?: { caFile?: string; cert?: string; key?: string }
}
export interface DriftItem {
  version: string
  profile: string
  subject: string
  psi: number | null
  count: number
  open: boolean
  status: 'no_baseline_yet' | 'drifting' | 'stable'
  evaluatedAt: number
}
