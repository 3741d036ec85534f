import type { ChildProcess } from 'node:child_process'
export interface AccessEntry {
  status: number
  method: string
  uri: string
  bytes: number
  /** The request's Range header ('-' without one). */
  range: string
}
export interface Nginx {
  port: number
  /** Base URL, ending in '/'. */
  url: string
  proc: ChildProcess
  accessLog: () => AccessEntry[]
  bytesServed: (uri?: string) => number
  errors: () => string
  stop: () => Promise<void>
}
export function startNginx(dir: string, root: string, options?: { port?: number; limitRate?: string }): Promise<Nginx>
