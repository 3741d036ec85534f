// Types for sim-devices.mjs.
import type { MqttClient } from 'mqtt'

export interface SimSpec {
  id: string
  secret: string
  profile: string
  model?: string
  version?: string
  conditions?: {
    network?: 'metered' | 'unmetered' | 'unknown'
    power?: 'charging' | 'battery' | 'unknown'
    idle?: boolean
  }
}
export interface SimDevice {
  id: string
  state: {
    models: { name: string; version: string }[]
    conditions: Record<string, unknown>
    shadow?: { model: string; candidate: string }
  }
  client: MqttClient
  publishState(): Promise<unknown>
  setConditions(c: SimSpec['conditions']): Promise<void>
  sendTelemetry(): Promise<void>
}
export interface SimFleet {
  sims: Map<string, SimDevice>
  deploys: { deviceId: string; model: string; version: string; rollback: boolean; at: number }[]
  shadows: { deviceId: string; version: string; at: number }[]
  telemetry(): Promise<void>
  close(): Promise<void>
}
export function startSimFleet(options: {
  mqttUrl: string
  devices: SimSpec[]
  now?: () => number
  behavior?: (
    version: string,
    deviceId: string,
  ) => { requests: number; errors: number; latencyMs: number; confidenceBin?: number; agreement?: number }
  autoActivate?: boolean
}): Promise<SimFleet>
