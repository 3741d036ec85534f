import type { ChildProcess } from 'node:child_process'
export interface NatsNode {
  name: string
  ports: { client: number; monitor: number; route: number; mqtt: number }
  dir: string
  conf: string
  pidFile: string
  mqttUrl: string
  proc: ChildProcess
  stderr: () => string
  kill9: () => Promise<void>
  restart: () => Promise<void>
  mqttClients: () => Promise<string[]>
}
export interface NatsCluster {
  nodes: NatsNode[]
  authDir: string
  authFile: string
  urls: string[]
  pidFiles: string[]
  stderr: () => string
  stop: () => Promise<void>
}
export function startNatsCluster(dir: string, options?: { authDir?: string; timeoutMs?: number }): Promise<NatsCluster>
