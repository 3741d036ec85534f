// startHub builds its parts in order and, when a later step fails, closes what
// the earlier ones opened: a hub whose port is taken rejects with
// EF_ERR_LISTEN_FAILED and leaves no listener, database file or thread behind.
import { createServer, type Server } from 'node:net'
import { readdirSync, readlinkSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { startHub } from '../src/hub.js'
import { COMPILE_WORKER, tempDir } from './fixtures/hub.js'

/** Files under `dir` this process holds open (the hub's SQLite connections, the writer thread's included). */
function openFilesUnder(dir: string): string[] {
  const open: string[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`)
      if (target.startsWith(dir)) open.push(target)
    } catch {
      // the fd closed while we were listing
    }
  }
  return open
}

async function listening(port = 0): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  return server
}
const portOf = (s: Server) => (s.address() as { port: number }).port
const closeServer = (s: Server) => new Promise<void>((r) => s.close(() => r()))

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const s = await listening()
  const port = portOf(s)
  await closeServer(s)
  return port
}

describe('startHub failure cleanup', () => {
  const cleanups: (() => Promise<void> | void)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  const start = (dir: string, mqttPort: number, httpPort: number) =>
    startHub({ dataDir: dir, mqttPort, httpPort, log: 'silent', compileWorkerUrl: COMPILE_WORKER, rolloutTickMs: 0 })

  it('an HTTP port in use: rejects with EF_ERR_LISTEN_FAILED, closes the broker and the database', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const taken = await listening()
    cleanups.push(() => closeServer(taken))
    const mqttPort = await freePort()

    const err = await start(dir, mqttPort, portOf(taken)).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'EF_ERR_LISTEN_FAILED' })
    expect((err as Error).message).toContain(`HTTP API on 127.0.0.1:${portOf(taken)}: EADDRINUSE`)

    // The broker listened on mqttPort before the API failed: it must have let go of it.
    const again = await listening(mqttPort)
    await closeServer(again)
    expect(openFilesUnder(dir)).toEqual([])

    // Nothing half-open is left in the folder: a hub starts there and serves.
    const hub = await start(dir, 0, 0)
    cleanups.push(() => hub.close())
    expect((await fetch(`${hub.httpUrl}/healthz`)).status).toBe(200)
  })

  it('an MQTT port in use: rejects with EF_ERR_LISTEN_FAILED and closes the database', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const taken = await listening()
    cleanups.push(() => closeServer(taken))

    const err = await start(dir, portOf(taken), 0).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'EF_ERR_LISTEN_FAILED' })
    expect((err as Error).message).toContain(`MQTT broker on 127.0.0.1:${portOf(taken)}: EADDRINUSE`)
    expect(openFilesUnder(dir)).toEqual([])
  })
})
