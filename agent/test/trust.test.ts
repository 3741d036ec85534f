// The agent's hub key trust [EF-3.6]: walking a rotation chain, refusing a
// forged or half-signed step, saving the chain atomically (0600) and finding
// the same key after a restart; and the cmd handler's hub-key path, which
// refuses an announcement that does not lead from the trusted key
// (EF_ERR_HUB_KEY_CHAIN_INVALID) and then refuses the old key's commands.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import pino from 'pino'
import {
  cmdCodec,
  followKeyChain,
  generateSigningKeys,
  privateKeyFromPem,
  signDocument,
  signKeyRotation,
  type KeyRotation,
} from '@edgefleet/shared'
import { CHAIN_FILE, HubTrust } from '../src/trust.js'
import { handleCmd, type CmdContext } from '../src/mqtt/handlers/cmd.js'
import type { EventReport } from '../src/updater/updater.js'
import { tempDir } from './fixtures/agent.js'

const key = () => {
  const k = generateSigningKeys()
  return { publicKey: k.publicKey, privateKey: privateKeyFromPem(k.privateKeyPem) }
}
const k0 = key()
const k1 = key()
const k2 = key()
const step01 = signKeyRotation(k0, k1, 1)
const step12 = signKeyRotation(k1, k2, 2)

describe('followKeyChain', () => {
  it('walks every valid step from the trusted key, from any point of the chain', () => {
    expect(followKeyChain(k0.publicKey, [step01, step12])).toEqual({
      current: k2.publicKey,
      retired: [k0.publicKey, k1.publicKey],
    })
    expect(followKeyChain(k1.publicKey, [step01, step12]).current).toBe(k2.publicKey)
    expect(followKeyChain(k2.publicKey, [step01, step12]).current).toBe(k2.publicKey)
    expect(followKeyChain(k0.publicKey, [step12]).current).toBe(k0.publicKey) // a gap leads nowhere
  })

  it('skips a step not signed by the retiring key, or not by the new one', () => {
    const evil = key()
    const forged = signKeyRotation(evil, evil, 3) // claims nothing about k0
    const noPrev: KeyRotation = { ...signKeyRotation(evil, evil, 3), prev: k0.publicKey } // evil's signature for k0
    const noNext: KeyRotation = { ...step01, next: evil.publicKey } // k0 never vouched for evil
    for (const bad of [forged, noPrev, noNext]) expect(followKeyChain(k0.publicKey, [bad]).current).toBe(k0.publicKey)
  })
})

describe('HubTrust', () => {
  it('saves an announced chain atomically with mode 0600 and a restart lands on the same key', () => {
    const tmp = tempDir()
    try {
      const trust = HubTrust.load(tmp.dir, k0.publicKey)
      expect(existsSync(join(tmp.dir, CHAIN_FILE))).toBe(false)
      const doc = { a: 1 }
      const oldSig = signDocument(doc, k0.privateKey)
      expect(trust.advance([step01])).toBe(true)
      expect(trust.current).toBe(k1.publicKey)
      expect(statSync(join(tmp.dir, CHAIN_FILE)).mode & 0o777).toBe(0o600)
      // New documents only under the new key; stored ones under any key of the chain.
      expect(trust.verifyNew(doc, oldSig)).toBe(false)
      expect(trust.verifyStored(doc, oldSig)).toBe(true)
      expect(trust.verifyNew(doc, signDocument(doc, k1.privateKey))).toBe(true)
      expect(trust.advance([step01])).toBe(false) // already there
      const again = HubTrust.load(tmp.dir, k0.publicKey)
      expect(again.current).toBe(k1.publicKey)
      expect(again.verifyStored(doc, oldSig)).toBe(true)
      expect(again.advance([step01, step12])).toBe(true)
      expect(HubTrust.load(tmp.dir, k0.publicKey).current).toBe(k2.publicKey)
    } finally {
      tmp.cleanup()
    }
  })

  it('refuses to start on a damaged chain file (EF_ERR_CONFIG_INVALID) rather than fall back to an older key', () => {
    const t = tempDir()
    try {
      writeFileSync(join(t.dir, CHAIN_FILE), '{"v":1,"chain":[{"prev":"x"}]}')
      expect(() => HubTrust.load(t.dir, k0.publicKey)).toThrow(
        expect.objectContaining({ code: 'EF_ERR_CONFIG_INVALID' }),
      )
    } finally {
      t.cleanup()
    }
  })
})

describe('hub-key commands', () => {
  const ctxFor = (dir: string, reports: EventReport[]): CmdContext => ({
    deviceId: 'dev-1',
    trust: HubTrust.load(dir, k0.publicKey),
    db: undefined as never, // hub-key and refused commands never reach the command table
    updater: undefined as never,
    log: pino({ level: 'silent' }),
    report: (ev) => reports.push(ev),
    now: Date.now,
    runtime: () => Promise.reject(new Error('not here')),
  })
  const announce = (id: string, chain: KeyRotation[], signer: { privateKey: ReturnType<typeof privateKeyFromPem> }) => {
    const unsigned = { v: 1 as const, id, deviceId: 'dev-1', issuedAt: 1, type: 'hub-key' as const, chain }
    return cmdCodec.encode({ ...unsigned, sig: signDocument(unsigned, signer.privateKey) })
  }
  const capture = (id: string, signer: { privateKey: ReturnType<typeof privateKeyFromPem> }) => {
    const unsigned = {
      v: 1 as const,
      id,
      deviceId: 'dev-1',
      issuedAt: 1,
      type: 'capture-policy' as const,
      policies: [],
    }
    return cmdCodec.encode({ ...unsigned, sig: signDocument(unsigned, signer.privateKey) })
  }

  it('moves on along a valid announcement, then refuses a command signed by the old key', async () => {
    const tmp = tempDir()
    try {
      const reports: EventReport[] = []
      const ctx = ctxFor(tmp.dir, reports)
      let changed = 0
      ctx.onTrustChanged = () => changed++
      await handleCmd(ctx, announce('announce-0001', [step01, step12], k2))
      expect(ctx.trust.current).toBe(k2.publicKey)
      expect(changed).toBe(1)
      expect(reports.at(-1)).toMatchObject({ kind: 'received', cmdId: 'announce-0001' })
      await handleCmd(ctx, capture('old-key-cmd-01', k0))
      expect(reports.at(-1)).toMatchObject({ kind: 'rejected', code: 'EF_ERR_SIGNATURE_INVALID' })
      expect(JSON.parse(readFileSync(join(tmp.dir, CHAIN_FILE), 'utf8')).chain).toHaveLength(2)
    } finally {
      tmp.cleanup()
    }
  })

  it('refuses an announcement whose chain does not reach its signer, or is signed by a stranger (EF_ERR_HUB_KEY_CHAIN_INVALID)', async () => {
    const tmp = tempDir()
    try {
      const reports: EventReport[] = []
      const ctx = ctxFor(tmp.dir, reports)
      const evil = key()
      const cases = [
        announce('announce-bad1', [step01], k2), // the chain reaches k1, the command is signed by k2
        announce('announce-bad2', [signKeyRotation(evil, evil, 9)], evil),
        announce('announce-bad3', [{ ...step01, next: evil.publicKey }], evil),
      ]
      for (const payload of cases) await handleCmd(ctx, payload)
      expect(reports.map((r) => [r.kind, r.code])).toEqual(
        cases.map(() => ['rejected', 'EF_ERR_HUB_KEY_CHAIN_INVALID']),
      )
      expect(ctx.trust.current).toBe(k0.publicKey)
      expect(existsSync(join(tmp.dir, CHAIN_FILE))).toBe(false)
    } finally {
      tmp.cleanup()
    }
  })
})
