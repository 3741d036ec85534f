// Owner-only files on the device: the data folder and its model, chunk and
// shadow folders 0700, the database with its -wal/-shm and the key chain 0600,
// on a fresh folder and on one made earlier with loose modes.
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { generateSigningKeys } from '@edgefleet/shared'
import { createAgent, type Agent } from '../src/agent.js'
import { resolveConfig } from '../src/config.js'
import { tempDir } from './fixtures/agent.js'

const mode = (p: string) => statSync(p).mode & 0o777

describe('agent file modes', () => {
  const cleanups: (() => Promise<void> | void)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  async function start(dataDir: string): Promise<Agent> {
    const agent = await createAgent(
      resolveConfig({
        flags: {
          hubUrl: 'mqtt://127.0.0.1:1', // nothing listens: the agent retries quietly
          deviceId: 'dev-1',
          secret: 's',
          hubKey: generateSigningKeys().publicKey,
          profile: 'gateway-rpi4',
          dataDir,
          apiPort: 0,
          logLevel: 'silent',
        },
      }),
    )
    cleanups.push(() => agent.close())
    return agent
  }

  it('a new data folder is 0700 and agent.db (the journal) 0600', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const data = join(dir, 'fresh', 'agent')
    await start(data)
    expect(mode(data)).toBe(0o700)
    for (const sub of ['models', 'chunks']) if (existsSync(join(data, sub))) expect(mode(join(data, sub))).toBe(0o700)
    expect(mode(join(data, 'agent.db'))).toBe(0o600)
  })

  it('an existing data folder and database made 0755/0644 are narrowed to 0700/0600', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const data = join(dir, 'loose')
    mkdirSync(data, { mode: 0o755 })
    chmodSync(data, 0o755)
    writeFileSync(join(data, 'agent.db'), '', { mode: 0o644 })
    chmodSync(join(data, 'agent.db'), 0o644)
    await start(data)
    expect(mode(data)).toBe(0o700)
    expect(mode(join(data, 'agent.db'))).toBe(0o600)
  })
})
