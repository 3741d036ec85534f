// Types for fleet.mjs (kept in plain JS so the demo runs without a build step).
import type { ChildProcess } from 'node:child_process'

export const ROOT: string
export const MODELS: { wakeHello: string; wakeNamaste: string }

type Stdio = 'inherit' | undefined
export interface HubProc {
  proc: ChildProcess
  httpUrl: string
  mqttUrl: string
  publicKey: string
  pid: number
  /** The admin API token (from the startup line's adminToken) [EF-8.10]. */
  token: string
  adminToken: string
  /** A TLS hub's CA file [EF-10]. */
  caFile?: string
  stderr: () => string
  stop: () => Promise<void>
}
export interface AgentProc {
  proc: ChildProcess
  apiPort: number
  deviceId: string
  pid: number
  stderr: () => string
  stop: () => Promise<void>
  kill9: () => boolean
}
export interface FleetSpec {
  id: string
  profile: string
  tags?: Record<string, string>
  /** Extra agent arguments (e.g. ['--transfer', 'http']). */
  args?: string[]
  /** This agent's broker URL (e.g. a proxy in front of the hub's), instead of the fleet's. */
  mqttUrl?: string
  /** This agent's telemetry interval, instead of the fleet's. */
  telemetryMs?: number
  /** Extra environment of this agent's process. */
  env?: Record<string, string>
}
export type FleetAgent = FleetSpec & AgentProc & { secret: string; url: string }

export function spawnJson(
  script: string,
  args: string[],
  key: string,
  opts?: { env?: Record<string, string>; timeoutMs?: number; stdio?: Stdio },
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the child's JSON line; tests check its shape
): Promise<{ proc: ChildProcess; info: any; stderr: () => string }>
export function stopProcess(proc: ChildProcess, graceMs?: number): Promise<void>
export function startHub(options: {
  dataDir: string
  logLevel?: string
  env?: Record<string, string>
  stdio?: Stdio
  extraArgs?: string[]
  mqttPort?: number
  httpPort?: number
  /** How long to wait for its startup line (default 30 s). */
  timeoutMs?: number
  /** Honour maintenance windows and conditions on plain deploys (default false: `--immediate-deploys`) [EF-8.16]. */
  windows?: boolean
}): Promise<HubProc>
export function startAgent(options: {
  mqttUrl: string
  deviceId: string
  secret: string
  hubKey: string
  profile: string
  dataDir: string
  telemetryMs?: number
  logLevel?: string
  env?: Record<string, string>
  stdio?: Stdio
  extraArgs?: string[]
  timeoutMs?: number
}): Promise<AgentProc>
type AgentOptions = Parameters<typeof startAgent>[0]
export function provision(
  hub: HubProc,
  device: { id: string; profile: string; tags?: Record<string, string> },
): Promise<string>
export function startDevice(
  hub: HubProc,
  device: { id: string; mqttUrl?: string } & Omit<AgentOptions, 'mqttUrl' | 'deviceId' | 'hubKey'>,
): Promise<AgentProc>
export function isOnline(hub: HubProc, id: string): Promise<boolean>
export function waitOnline(hub: HubProc, id: string, opts?: { timeoutMs?: number }): Promise<true>
export function waitAllOnline(hub: HubProc, opts?: { timeoutMs?: number }): Promise<true>
export function api(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body of any route; tests check its shape with expect
): Promise<any>
export function cli(
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number | null; out: string; err: string }>
export function waitFor<T>(
  fn: () => T | Promise<T>,
  opts?: { timeoutMs?: number; intervalMs?: number; what?: string },
): Promise<NonNullable<T>>
export function wakeInput(seed?: number): { 'onnx::Flatten_0': { type: 'float32'; dims: number[]; data: number[] } }
export function startFleet(
  hub: HubProc,
  specs: FleetSpec[],
  opts: {
    tmp: string
    telemetryMs?: number
    /** Passed as --health-ms: how often idle agents still report their stats. */
    healthMs?: number
    stdio?: Stdio
    logLevel?: string
    mqttUrl?: string
  },
): Promise<FleetAgent[]>
export interface TcpProxy {
  url: string
  port: number
  readonly connections: number
  cut(): void
  restore(): void
  stall(on: boolean): void
  close(): Promise<void>
}
export function startTcpProxy(targetUrl: string): Promise<TcpProxy>
