import type { ChildProcess } from 'node:child_process'
export interface Mosquitto {
  proc: ChildProcess
  port: number
  url: string
  dir: string
  pidFile: string
  stderr: () => string
  stop: () => Promise<void>
  kill9: () => Promise<void>
}
export function freePort(): Promise<number>
export function startMosquitto(
  dir: string,
  port?: number,
  options?: { tls?: { caFile: string; certFile: string; keyFile: string } },
): Promise<Mosquitto>
