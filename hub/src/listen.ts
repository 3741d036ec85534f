// Binding a listener: one place that turns the operating system's refusal
// (port in use, no permission, unknown address) into EF_ERR_LISTEN_FAILED, so
// start-up fails with a code and the caller can close what it already opened.
import { once } from 'node:events'
import type { Server } from 'node:net'
import { EdgeFleetError } from '@edgefleet/shared'

/** `err` from a failed bind as EF_ERR_LISTEN_FAILED naming the listener and address. */
export function listenError(err: unknown, what: string, host: string, port: number): EdgeFleetError {
  const e = err as NodeJS.ErrnoException
  return new EdgeFleetError('EF_ERR_LISTEN_FAILED', `${what} on ${host}:${port}: ${e.code ?? e.message}`, {
    cause: err,
  })
}

/** Listens on host:port and resolves with the bound port (useful with port 0). */
export async function listenOn(server: Server, what: string, host: string, port: number): Promise<number> {
  server.listen(port, host)
  try {
    await once(server, 'listening')
  } catch (err) {
    throw listenError(err, what, host, port)
  }
  const addr = server.address()
  return typeof addr === 'object' && addr ? addr.port : port
}
