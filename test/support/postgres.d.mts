export interface Postgres {
  /** postgresql://edgefleet@127.0.0.1:PORT/DATABASE (trust authentication, no password). */
  url: string
  port: number
  /** The cluster's temp folder: data/, server.log and the unix socket. */
  dir: string
  host: string
  user: string
  database: string
  /** Runs one statement through psql; resolves its unaligned, tuples-only output. */
  psql: (sql: string) => Promise<string>
  /** Starts the server again on the same port and data after stopServer(). */
  startServer: () => Promise<void>
  /** Stops the server and keeps its data ('fast' disconnects clients; 'immediate' is a crash). */
  stopServer: (mode?: 'smart' | 'fast' | 'immediate') => Promise<void>
  /** Stops the server and removes the folder. */
  stop: () => Promise<void>
}
export function startPostgres(options?: { port?: number; database?: string }): Promise<Postgres>
