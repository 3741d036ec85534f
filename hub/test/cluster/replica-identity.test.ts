// What replicas share and what each keeps its own [EF-12.7, EF-12.8]: one key
// file (the same signing key and broker secret for all, created once even when
// they start together), and a broker client id per replica.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadOrCreateKeys } from '../../src/keys.js'
import { hubClientId, isHubClientId } from '../../src/broker/identity.js'
import { tempDir } from '../fixtures/hub.js'

describe('replica identity', () => {
  it('replicas on one --key-file sign with one key and share the broker secret', () => {
    const { dir, cleanup } = tempDir('ef-keyfile-')
    try {
      const keyFile = join(dir, 'shared', 'hub-keys.json')
      const first = loadOrCreateKeys(join(dir, 'a'), keyFile)
      const second = loadOrCreateKeys(join(dir, 'b'), keyFile)
      expect(second.publicKey).toBe(first.publicKey)
      expect(second.hubSecret).toBe(first.hubSecret)
      expect(statSync(keyFile).mode & 0o777).toBe(0o600)
      // The temp file it was linked from is gone; nothing was written into the data folders.
      expect(readdirSync(join(dir, 'shared'))).toEqual(['hub-keys.json'])
      const own = loadOrCreateKeys(join(dir, 'c'))
      expect(own.publicKey).not.toBe(first.publicKey)
    } finally {
      cleanup()
    }
  })

  it('each replica has its own hub client id, still under the hub prefix', () => {
    const secret = 'shared-secret'
    const ids = [hubClientId(secret), hubClientId(secret, 'hub-a'), hubClientId(secret, 'hub b/1')]
    expect(new Set(ids).size).toBe(3)
    for (const id of ids) expect(isHubClientId(id)).toBe(true)
    expect(ids[2]).toMatch(/-hub_b_1$/)
    expect(hubClientId(secret, 'hub-a')).toBe(ids[1])
  })
})
