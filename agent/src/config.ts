// Agent configuration: defaults, then a JSON config file, then environment
// variables, then flags; validated once and frozen.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { EdgeFleetError, isValidId, parseBrokerUrls, publicKeyFromText } from '@edgefleet/shared'

export interface AgentConfig {
  /** Broker URL, e.g. mqtt://hub.local:1883, or a comma-separated list of a cluster's nodes [EF-4.12]. */
  hubUrl: string
  deviceId: string
  secret: string
  /** The hub's ed25519 public key (base64url, printed by `edgefleet device add`). */
  hubKey: string
  /** Firmware profile id this device runs. */
  profile: string
  /** Folder for slots, chunks and the agent database. */
  dataDir: string
  /** Local inference API port on apiHost; 0 = ephemeral. */
  apiPort: number
  apiHost: string
  /** Largest accepted binary inference request body (bytes); a model's input size sets the actual limit [EF-7.1.1]. */
  maxBodyBytes: number
  /** Largest accepted JSON inference request body (bytes), whatever the model: larger tensors go binary or b64. */
  maxJsonBodyBytes: number
  /** How often telemetry batches are cut. */
  telemetryIntervalMs: number
  /** An idle device (no requests) still sends its stats this often [EF-2.6.7]; 0 = only with traffic. */
  healthIntervalMs: number
  /** Outbox rows kept while offline before the oldest are evicted. */
  outboxMaxRows: number
  /** Chunks requested at once while downloading (flow control). */
  fetchWindow: number
  /** Give up a download after this long without completing. */
  downloadTimeoutMs: number
  /** Longest back-off between reconnect attempts (exponential with full jitter up to it). */
  reconnectMaxMs: number
  /** firmware-profiles/ folder, to read threads and execution providers. */
  profilesDir?: string
  /** Inference runtime [EF-5.6]: auto (by the profile's arch: wasm on armv7, else native), native or wasm. */
  runtime: 'auto' | 'native' | 'wasm'
  /** 'http': fetch artifacts with HTTP range requests when the hub offers them; MQTT otherwise and as fallback. */
  transfer: 'mqtt' | 'http'
  /** Network kind reported to the hub (simulated on test devices). */
  network: 'metered' | 'unmetered' | 'unknown'
  /** Simulated power source (test devices); unset = what /sys shows [EF-2.1.2]. */
  power?: 'charging' | 'battery' | 'unknown'
  /** Simulated idle state (test devices); unset = from the load average. */
  idle?: boolean
  /** Size cap of the agent database (outbox) in bytes; 0 = no cap beyond the disk [EF-7.3]. */
  maxDbBytes: number
  logLevel: string
  /** CA (PEM file) the hub's certificate must chain to, for mqtts:// and https:// [EF-10.4]; unset: the system's. */
  caFile?: string
  /** Client certificate and key (PEM files) from `edgefleet device add --cert`, for mutual TLS [EF-10.3]. */
  certFile?: string
  keyFile?: string
}

export const defaultAgentOptions = {
  /** Local API default port. */
  apiPort: 8790,
  apiHost: '127.0.0.1',
  /** 64 MiB of binary tensors. */
  maxBodyBytes: 64 * 1024 * 1024,
  /** 8 MiB: parsing JSON numbers costs ~10 × the text in memory, and the agent's unit allows 256 MiB. */
  maxJsonBodyBytes: 8 * 1024 * 1024,
  /** 5 seconds. */
  telemetryIntervalMs: 5000,
  /** 1 minute. */
  healthIntervalMs: 60_000,
  outboxMaxRows: 10_000,
  fetchWindow: 32,
  /** 10 minutes. */
  downloadTimeoutMs: 10 * 60 * 1000,
  /** 30 seconds. */
  reconnectMaxMs: 30_000,
  network: 'unknown' as const,
  transfer: 'mqtt' as const,
  runtime: 'auto' as const,
  /** 64 MiB of queued telemetry, samples and events. */
  maxDbBytes: 64 * 1024 * 1024,
  logLevel: 'info',
  dataDir: '.data/agent',
}

const ENV: Record<string, keyof AgentConfig> = {
  EF_HUB: 'hubUrl',
  EF_DEVICE_ID: 'deviceId',
  EF_SECRET: 'secret',
  EF_HUB_KEY: 'hubKey',
  EF_PROFILE: 'profile',
  EF_DATA: 'dataDir',
  EF_API_PORT: 'apiPort',
  EF_HEALTH_MS: 'healthIntervalMs',
  EF_NETWORK: 'network',
  EF_TRANSFER: 'transfer',
  EF_RUNTIME: 'runtime',
  EF_POWER: 'power',
  EF_MAX_DB_BYTES: 'maxDbBytes',
  EF_RECONNECT_MAX_MS: 'reconnectMaxMs',
  EF_LOG_LEVEL: 'logLevel',
  EF_CA: 'caFile',
  EF_CERT: 'certFile',
  EF_KEY: 'keyFile',
}

const NUMERIC = new Set<keyof AgentConfig>([
  'apiPort',
  'maxBodyBytes',
  'maxJsonBodyBytes',
  'telemetryIntervalMs',
  'healthIntervalMs',
  'outboxMaxRows',
  'fetchWindow',
  'downloadTimeoutMs',
  'maxDbBytes',
  'reconnectMaxMs',
])

export function resolveConfig(
  input: { file?: string; env?: NodeJS.ProcessEnv; flags?: Partial<Record<keyof AgentConfig, unknown>> } = {},
): Readonly<AgentConfig> {
  const merged: Record<string, unknown> = { ...defaultAgentOptions }
  if (input.file) {
    try {
      Object.assign(merged, JSON.parse(readFileSync(input.file, 'utf8')) as Record<string, unknown>)
    } catch (err) {
      throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', `${input.file}: ${(err as Error).message}`)
    }
  }
  for (const [k, field] of Object.entries(ENV)) if (input.env?.[k] !== undefined) merged[field] = input.env[k]
  for (const [k, v] of Object.entries(input.flags ?? {})) if (v !== undefined) merged[k] = v
  // Number('') is 0: an empty EF_API_PORT= must be refused, not read as "ephemeral port".
  for (const k of NUMERIC)
    if (typeof merged[k] === 'string') merged[k] = merged[k].trim() === '' ? Number.NaN : Number(merged[k])
  const resolved = merged as unknown as AgentConfig
  const problems: string[] = []
  for (const k of ['hubUrl', 'deviceId', 'secret', 'hubKey', 'profile'] as const)
    if (typeof resolved[k] !== 'string' || resolved[k] === '') problems.push(`${k} is required`)
  if (typeof resolved.deviceId === 'string' && !isValidId(resolved.deviceId))
    problems.push('deviceId: 1-64 of letters, digits, . _ -')
  if (typeof resolved.hubUrl === 'string' && resolved.hubUrl !== '') {
    try {
      parseBrokerUrls(resolved.hubUrl)
    } catch (err) {
      problems.push(`hubUrl: ${(err as Error).message}`)
    }
  }
  if (typeof resolved.hubKey === 'string') {
    try {
      publicKeyFromText(resolved.hubKey)
    } catch {
      problems.push('hubKey: 43 base64url characters')
    }
  }
  for (const k of NUMERIC)
    if (!Number.isInteger(resolved[k]) || (resolved[k] as number) < 0)
      problems.push(`${k} must be a non-negative integer`)
  if (Number.isInteger(resolved.reconnectMaxMs) && resolved.reconnectMaxMs < 100)
    problems.push('reconnectMaxMs must be at least 100 (a tight reconnect loop hammers the broker)')
  if (!['metered', 'unmetered', 'unknown'].includes(resolved.network))
    problems.push('network: metered | unmetered | unknown')
  if (!['mqtt', 'http'].includes(resolved.transfer)) problems.push('transfer: mqtt | http')
  if (!['auto', 'native', 'wasm'].includes(resolved.runtime)) problems.push('runtime: auto | native | wasm')
  if (resolved.power !== undefined && !['charging', 'battery', 'unknown'].includes(resolved.power))
    problems.push('power: charging | battery | unknown')
  if (typeof resolved.idle === 'string') resolved.idle = resolved.idle === 'true'
  if (resolved.idle !== undefined && typeof resolved.idle !== 'boolean') problems.push('idle: true | false')
  if (problems.length) throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', problems.join('; '))
  checkTlsFiles(resolved)
  return Object.freeze({
    ...resolved,
    dataDir: resolve(resolved.dataDir),
    ...(resolved.caFile ? { caFile: resolve(resolved.caFile) } : {}),
    ...(resolved.certFile ? { certFile: resolve(resolved.certFile) } : {}),
    ...(resolved.keyFile ? { keyFile: resolve(resolved.keyFile) } : {}),
  })
}

/** TLS files must be readable PEM, and a certificate comes with its key [EF-10.3, EF-10.4]. */
function checkTlsFiles(c: AgentConfig): void {
  if (!c.certFile !== !c.keyFile)
    throw new EdgeFleetError('EF_ERR_TLS_FILE_INVALID', 'certFile and keyFile go together')
  for (const [what, file] of [
    ['caFile', c.caFile],
    ['certFile', c.certFile],
    ['keyFile', c.keyFile],
  ] as const) {
    if (file === undefined) continue
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new EdgeFleetError('EF_ERR_TLS_FILE_INVALID', `${what} ${file}: ${(err as Error).message}`)
    }
    if (!text.includes('-----BEGIN ')) throw new EdgeFleetError('EF_ERR_TLS_FILE_INVALID', `${what} ${file}: not PEM`)
  }
}

/** The PEM contents of the configured TLS files, for mqtt.js and https requests. */
export function readTlsFiles(c: Readonly<AgentConfig>): AgentTls | undefined {
  if (!c.caFile && !c.certFile) return undefined
  return {
    ...(c.caFile ? { ca: readFileSync(c.caFile) } : {}),
    ...(c.certFile && c.keyFile ? { cert: readFileSync(c.certFile), key: readFileSync(c.keyFile) } : {}),
  }
}

export interface AgentTls {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
}
