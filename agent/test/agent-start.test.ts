// createAgent builds its parts in order and, when a later step fails, closes
// what the earlier ones opened: an agent whose local API port is taken rejects
// with EF_ERR_LISTEN_FAILED and leaves its database closed.
import { createServer, type Server } from 'node:net'
import { readdirSync, readlinkSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { generateSigningKeys } from '@edgefleet/shared'
import { createAgent } from '../src/agent.js'
import { resolveConfig } from '../src/config.js'
import { tempDir } from './fixtures/agent.js'

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

describe('createAgent failure cleanup', () => {
  const cleanups: (() => Promise<void> | void)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('a local API port in use: rejects with EF_ERR_LISTEN_FAILED and closes the database', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const taken: Server = createServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()))
    cleanups.push(() => new Promise<void>((r) => taken.close(() => r())))
    const port = (taken.address() as { port: number }).port
    const config = (apiPort: number) =>
      resolveConfig({
        flags: {
          // Nothing listens there: start-up fails before the connection is made, or the agent retries quietly.
          hubUrl: 'mqtt://127.0.0.1:1',
          deviceId: 'dev-1',
          secret: 's',
          hubKey: generateSigningKeys().publicKey,
          profile: 'gateway-rpi4',
          dataDir: dir,
          apiPort,
          logLevel: 'silent',
        },
      })

    const err = await createAgent(config(port)).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'EF_ERR_LISTEN_FAILED' })
    expect((err as Error).message).toContain(`local API on 127.0.0.1:${port}: EADDRINUSE`)
    expect(openFilesUnder(dir)).toEqual([])

    // The folder is usable again at once: the same agent starts on a free port.
    const agent = await createAgent(config(0))
    cleanups.push(() => agent.close())
    expect(agent.apiPort).toBeGreaterThan(0)
    expect(openFilesUnder(dir).some((f) => f.endsWith('agent.db'))).toBe(true)
  })
})

describe('idle health heartbeat [EF-2.6.7]', () => {
  async function idleAgent(healthIntervalMs: number) {
    const { dir, cleanup } = tempDir()
    let clockMs = 1_000_000
    const agent = await createAgent(
      resolveConfig({
        flags: {
          hubUrl: 'mqtt://127.0.0.1:1', // offline: batches stay queued in the outbox, where the test counts them
          deviceId: 'dev-1',
          secret: 's',
          hubKey: generateSigningKeys().publicKey,
          profile: 'gateway-rpi4',
          dataDir: dir,
          apiPort: 0,
          healthIntervalMs,
          logLevel: 'silent',
        },
      }),
      { now: () => clockMs, api: false },
    )
    const queued = () => agent.stats().queued.telemetry ?? 0
    return { agent, queued, advance: (ms: number) => (clockMs += ms), cleanup }
  }

  it('an agent that served nothing sends its stats once per interval, not once per cut', async () => {
    const idle = await idleAgent(60_000)
    try {
      idle.advance(59_000)
      idle.agent.flushTelemetry()
      expect(idle.queued()).toBe(0)
      idle.advance(1_000)
      idle.agent.flushTelemetry()
      expect(idle.queued()).toBe(1)
      idle.advance(5_000)
      idle.agent.flushTelemetry()
      expect(idle.queued()).toBe(1)
    } finally {
      await idle.agent.close()
      idle.cleanup()
    }
  })

  it('0 turns the heartbeat off: an idle agent sends nothing', async () => {
    const idle = await idleAgent(0)
    try {
      idle.advance(3_600_000)
      idle.agent.flushTelemetry()
      expect(idle.queued()).toBe(0)
    } finally {
      await idle.agent.close()
      idle.cleanup()
    }
  })
})
