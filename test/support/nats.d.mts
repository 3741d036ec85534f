import type { ChildProcess } from 'node:child_process'
export interface NatsNode {
  name: string
  ports: { client: number; monitor: number; route: number; mqtt: number }
  dir: string
  conf: string
  pidFile: string
  mqttUrl: string
  /** This node's NATS client URL (no credentials). */
  natsUrl: string
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
  /** Every node's NATS client URL. */
  clientUrls: string[]
  /** With `streamUser`: the NATS user of auth.conf, and a hub `--stream` URL carrying it. */
  streamCredentials?: { user: string; pass: string }
  streamUrl?: string
  pidFiles: string[]
  stderr: () => string
  stop: () => Promise<void>
}
export function startNatsCluster(
  dir: string,
  options?: { authDir?: string; timeoutMs?: number; streamUser?: boolean },
): Promise<NatsCluster>
