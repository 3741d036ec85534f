// Local hygiene on a real hub: its data folder and blob folder 0700, the
// database (with -wal/-shm), keys and admin token 0600, also when the folder
// and database existed before with loose modes; and the console's security
// headers over real HTTP.
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHub, type Hub } from '../src/hub.js'
import { COMPILE_WORKER, tempDir } from './fixtures/hub.js'

const mode = (p: string) => statSync(p).mode & 0o777

describe('hub hygiene', () => {
  const tmp = tempDir('ef-hygiene-')
  const data = join(tmp.dir, 'data')
  let hub: Hub
  beforeAll(async () => {
    // A folder and database made earlier by someone else's umask.
    mkdirSync(data, { mode: 0o755 })
    chmodSync(data, 0o755)
    writeFileSync(join(data, 'hub.db'), '', { mode: 0o644 })
    chmodSync(join(data, 'hub.db'), 0o644)
    hub = await startHub({
      dataDir: data,
      mqttPort: 0,
      httpPort: 0,
      log: 'silent',
      compileWorkerUrl: COMPILE_WORKER,
      rolloutTickMs: 0,
    })
  })
  afterAll(async () => {
    await hub?.close()
    tmp.cleanup()
  })

  it('data and blob folders are 0700; database, WAL, shared memory, keys and admin token 0600', () => {
    expect(mode(data)).toBe(0o700)
    expect(mode(join(data, 'blobs'))).toBe(0o700)
    for (const f of ['hub.db', 'hub.db-wal', 'hub.db-shm', 'hub-keys.json', 'admin-token'])
      expect(mode(join(data, f)), f).toBe(0o600)
  })

  it('a key rotation keeps hub-keys.json 0600', () => {
    hub.keys.rotate(Date.now())
    expect(mode(join(data, 'hub-keys.json'))).toBe(0o600)
  })

  it.each(['/', '/console.js', '/console.css'])(
    'the console %s carries CSP (scripts from self only), X-Frame-Options DENY and nosniff',
    async (path) => {
      const res = await fetch(new URL(path, hub.httpUrl))
      expect(res.status).toBe(200)
      const csp = res.headers.get('content-security-policy') ?? ''
      expect(csp).toContain("script-src 'self'")
      expect(csp).toContain("frame-ancestors 'none'")
      expect(csp).toContain("default-src 'none'")
      expect(csp).not.toMatch(/script-src[^;]*unsafe/)
      expect(res.headers.get('x-frame-options')).toBe('DENY')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    },
  )

  it('the console page has no inline script for the CSP to block', async () => {
    const html = await (await fetch(hub.httpUrl)).text()
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
    expect(html).not.toMatch(/\son[a-z]+=/)
  })
})
