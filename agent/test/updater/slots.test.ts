// A/B slots: the active pointer, the staging slot, and what counts as a
// verified slot (signature + model digest) [EF-4.5].
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateSigningKeys, privateKeyFromPem } from '@edgefleet/shared'
import { HubTrust } from '../../src/trust.js'
import { Slots, other } from '../../src/updater/slots.js'
import { MODELS, buildWake, tempDir, type Build } from '../fixtures/agent.js'

const keys = generateSigningKeys()
const priv = privateKeyFromPem(keys.privateKeyPem)
const pub = new HubTrust(keys.publicKey)

describe('Slots', () => {
  const t = tempDir()
  const slots = new Slots(join(t.dir, 'models'))
  let build: Build
  beforeAll(async () => {
    build = await buildWake(MODELS.hello, { key: priv, version: '1.0' })
  })
  afterAll(() => t.cleanup())

  const stage = (slot: 'a' | 'b') => {
    slots.clear('wake', slot)
    copyFileSync(MODELS.hello, slots.modelPath('wake', slot))
    slots.writeManifest('wake', slot, build.manifest, build.manifestSig)
  }

  it('has no active slot at first and stages into a', () => {
    expect(slots.active('wake')).toBeUndefined()
    expect(slots.stagingSlot('wake')).toBe('a')
    expect(slots.models()).toEqual([])
    expect(other('a')).toBe('b')
    expect(other('b')).toBe('a')
  })

  it('a staged slot verifies against the hub key only', () => {
    stage('a')
    const v = slots.verified('wake', 'a', pub)
    expect(v?.manifest.version).toBe('1.0')
    expect(v?.modelPath).toBe(slots.modelPath('wake', 'a'))
    expect(slots.verified('wake', 'a', new HubTrust(generateSigningKeys().publicKey))).toBeUndefined()
    expect(slots.verified('wake', 'b', pub)).toBeUndefined()
    // Filed under another model name it is not that model's.
    expect(slots.verified('other', 'a', pub)).toBeUndefined()
  })

  it('setActive is the switch: active, staging and models() follow it', () => {
    slots.setActive('wake', 'a', '1.0')
    expect(slots.active('wake')).toBe('a')
    expect(slots.stagingSlot('wake')).toBe('b')
    expect(slots.models()).toEqual(['wake'])
    slots.setActive('wake', 'b', '1.0')
    expect(slots.stagingSlot('wake')).toBe('a')
  })

  it('a damaged pointer file means no active slot', () => {
    writeFileSync(join(slots.dir('wake'), 'active.json'), '{"slot": "c"}')
    expect(slots.active('wake')).toBeUndefined()
    writeFileSync(join(slots.dir('wake'), 'active.json'), 'garbage')
    expect(slots.active('wake')).toBeUndefined()
  })

  it('a flipped byte in the model, an edited manifest or a missing signature fails verification', () => {
    stage('b')
    expect(slots.verified('wake', 'b', pub)).toBeDefined()
    const p = slots.modelPath('wake', 'b')
    const bytes = readFileSync(p)
    bytes[100] ^= 0x80
    writeFileSync(p, bytes)
    expect(slots.verified('wake', 'b', pub)).toBeUndefined()

    stage('b')
    writeFileSync(join(slots.dir('wake', 'b'), 'manifest.json'), JSON.stringify({ ...build.manifest, version: '9.0' }))
    expect(slots.verified('wake', 'b', pub)).toBeUndefined()

    stage('b')
    rmSync(join(slots.dir('wake', 'b'), 'manifest.sig'))
    expect(slots.verified('wake', 'b', pub)).toBeUndefined()
  })
})
