// The update pipeline with real ONNX Runtime sessions on the shipped wake-word
// models [EF-4.5 .. EF-4.7]: deploy, refusals, health-check failure, downgrade
// rules, rollback, and restore after a restart (including a damaged slot).
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateSigningKeys, privateKeyFromPem, tensorsClose } from '@edgefleet/shared'
import { ModelHost } from '../../src/runtime/host.js'
import { HubTrust } from '../../src/trust.js'
import { Slots } from '../../src/updater/slots.js'
import { ChunkStore } from '../../src/updater/chunks.js'
import { Updater, type EventReport } from '../../src/updater/updater.js'
import {
  MODELS,
  WAKE_INPUT,
  WAKE_OUTPUT,
  FakeTransport,
  buildWake,
  deployCmd,
  referenceRun,
  rollbackCmd,
  tempDir,
  type Build,
} from '../fixtures/agent.js'

const keys = generateSigningKeys()
const priv = privateKeyFromPem(keys.privateKeyPem)
const trust = new HubTrust(keys.publicKey)
const rogue = privateKeyFromPem(generateSigningKeys().privateKeyPem)

interface Agent {
  slots: Slots
  host: ModelHost
  updater: Updater
  events: EventReport[]
  changes: number
}

describe('Updater', () => {
  const tmp = tempDir()
  const transport = new FakeTransport()
  let agent: Agent
  const builds: Record<string, Build> = {}

  /** A fresh agent on the same folders, as after a restart. */
  function startAgent(): Agent {
    const slots = new Slots(join(tmp.dir, 'models'))
    const chunks = new ChunkStore(join(tmp.dir, 'chunks'))
    const host = new ModelHost({ threads: 1, executionProviders: ['cpu'] })
    const started: Agent = { slots, host, updater: undefined as unknown as Updater, events: [], changes: 0 }
    started.updater = new Updater({
      slots,
      chunks,
      host,
      transport,
      trust,
      profile: 'gateway-rpi4',
      agentVersion: '0.1.0',
      fetchWindow: 4,
      downloadTimeoutMs: 10_000,
      report: (ev) => started.events.push(ev),
      onChange: () => started.changes++,
    })
    return started
  }

  const serving = () => agent.host.get('wake')
  const kinds = () => agent.events.map((e) => e.kind)
  /** Runs the served model on the health-check input and compares with a direct run of `file`. */
  async function expectServes(file: string, version: string) {
    expect(serving()?.version).toBe(version)
    const ref = await referenceRun(file, 11)
    const got = await agent.host.infer('wake', { [WAKE_INPUT]: ref.input })
    const want = ref.outputs[WAKE_OUTPUT]
    expect(got.version).toBe(version)
    expect(tensorsClose(got.outputs[WAKE_OUTPUT].data, want.data, 1e-6, 0).ok).toBe(true)
  }

  beforeAll(async () => {
    builds.v1 = await buildWake(MODELS.hello, { key: priv, version: '1.0' })
    builds.v2 = await buildWake(MODELS.namaste, { key: priv, version: '2.0' })
    builds.v2bad = await buildWake(MODELS.namaste, { key: priv, version: '2.0', alterOutputs: 0.5 })
    builds.v15 = await buildWake(MODELS.helloOld, { key: priv, version: '1.5' })
    builds.v3 = await buildWake(MODELS.hello, { key: priv, version: '3.0' })
    for (const b of Object.values(builds)) transport.add(b)
    agent = startAgent()
  })
  afterAll(async () => {
    await agent?.host.close()
    tmp.cleanup()
  })

  it('deploys 1.0: events in order, slot pointer written, the host serves it', async () => {
    const ev = await agent.updater.deploy(deployCmd(builds.v1, priv))
    expect(ev, JSON.stringify(ev)).toMatchObject({ kind: 'activated' })
    expect(kinds().filter((k) => k !== 'downloading')).toEqual([
      'received',
      'downloaded',
      'verified',
      'staged',
      'activated',
    ])
    expect(agent.slots.active('wake')).toBe('a')
    expect(JSON.parse(readFileSync(join(tmp.dir, 'models/wake/active.json'), 'utf8'))).toEqual({
      slot: 'a',
      version: '1.0',
    })
    expect(agent.slots.verified('wake', 'a', trust)?.manifest.version).toBe('1.0')
    expect(readFileSync(agent.slots.modelPath('wake', 'a')).equals(builds.v1.bytes)).toBe(true)
    expect(agent.changes).toBe(1)
    expect(new Set(transport.requested).size).toBe(builds.v1.chunked.chunks.length)
    await expectServes(MODELS.hello, '1.0')
  })

  it('deploying the build it already serves is a no-op "activated"', async () => {
    agent.events = []
    const asked = transport.requested.length
    const ev = await agent.updater.deploy(deployCmd(builds.v1, priv))
    expect(ev).toMatchObject({ kind: 'activated', message: 'already serving this build' })
    expect(transport.requested.length).toBe(asked)
  })

  it('refuses a manifest signed with another key: rejected EF_ERR_SIGNATURE_INVALID, nothing fetched', async () => {
    agent.events = []
    const asked = transport.requested.length
    const forged = {
      manifest: builds.v2.manifest,
      manifestSig: (await buildWake(MODELS.namaste, { key: rogue, version: '2.0' })).manifestSig,
    }
    const ev = await agent.updater.deploy(deployCmd(forged, priv))
    expect(ev).toMatchObject({ kind: 'rejected', code: 'EF_ERR_SIGNATURE_INVALID', version: '2.0' })
    expect(kinds()).toEqual(['rejected'])
    expect(transport.requested.length).toBe(asked)
    // A signed manifest altered afterwards fails the same way.
    const altered = { manifest: { ...builds.v2.manifest, version: '9.0' }, manifestSig: builds.v2.manifestSig }
    expect((await agent.updater.deploy(deployCmd(altered, priv))).code).toBe('EF_ERR_SIGNATURE_INVALID')
    await expectServes(MODELS.hello, '1.0')
  })

  it('refuses a build for another profile: rejected EF_ERR_MANIFEST_PROFILE_MISMATCH', async () => {
    const other = await buildWake(MODELS.namaste, { key: priv, version: '2.0', profile: 'industrial-x86' })
    const ev = await agent.updater.deploy(deployCmd(other, priv))
    expect(ev).toMatchObject({ kind: 'rejected', code: 'EF_ERR_MANIFEST_PROFILE_MISMATCH' })
    expect(serving()?.version).toBe('1.0')
  })

  it('refuses a build that needs a newer agent or ONNX Runtime before fetching anything: EF_ERR_AGENT_TOO_OLD [EF-3.8]', async () => {
    for (const requires of [{ agent: '0.2' }, { ort: '99.0' }, { agent: '0.1', ort: '1.31' }]) {
      agent.events = []
      const asked = transport.requested.length
      const newer = await buildWake(MODELS.namaste, { key: priv, version: '2.0', requires })
      transport.add(newer)
      const ev = await agent.updater.deploy(deployCmd(newer, priv))
      expect(ev, JSON.stringify(requires)).toMatchObject({
        kind: 'rejected',
        code: 'EF_ERR_AGENT_TOO_OLD',
        version: '2.0',
      })
      expect(ev.message).toMatch(
        requires.ort ? `ONNX Runtime ${requires.ort} (this runs 1.30.0)` : 'agent 0.2 (this is 0.1.0)',
      )
      expect(kinds()).toEqual(['rejected'])
      expect(transport.requested.length).toBe(asked)
      expect(serving()?.version).toBe('1.0')
    }
  })

  it('health vectors that do not match: health_failed EF_ERR_HEALTH_CHECK_FAILED, 1.0 keeps serving', async () => {
    agent.events = []
    const ev = await agent.updater.deploy(deployCmd(builds.v2bad, priv))
    expect(ev).toMatchObject({ kind: 'health_failed', code: 'EF_ERR_HEALTH_CHECK_FAILED', version: '2.0' })
    expect(kinds().filter((k) => k !== 'downloading')).toEqual([
      'received',
      'downloaded',
      'verified',
      'staged',
      'health_failed',
    ])
    expect(agent.slots.active('wake')).toBe('a')
    expect(agent.changes).toBe(1)
    // The staged build is discarded [EF-4.5]: a later restore or rollback can never pick it up.
    expect(agent.slots.verified('wake', 'b', trust)).toBeUndefined()
    expect((await agent.updater.rollback(rollbackCmd('wake', priv))).code).toBe('EF_ERR_NO_ROLLBACK_TARGET')
    await expectServes(MODELS.hello, '1.0')
  })

  it('deploys 2.0 into the other slot; 1.0 stays there as the previous version', async () => {
    agent.events = []
    const asked = transport.requested.length
    const ev = await agent.updater.deploy(deployCmd(builds.v2, priv))
    expect(ev.kind).toBe('activated')
    // The failed attempt left its verified chunks in the store: nothing is fetched twice [EF-4.3].
    expect(transport.requested.length).toBe(asked)
    expect(agent.slots.active('wake')).toBe('b')
    expect(agent.slots.verified('wake', 'a', trust)?.manifest.version).toBe('1.0')
    await expectServes(MODELS.namaste, '2.0')
  })

  it('refuses a lower version: rejected EF_ERR_DOWNGRADE_REFUSED [EF-4.6]', async () => {
    const asked = transport.requested.length
    const ev = await agent.updater.deploy(deployCmd(builds.v15, priv))
    expect(ev).toMatchObject({ kind: 'rejected', code: 'EF_ERR_DOWNGRADE_REFUSED', version: '1.5' })
    expect(transport.requested.length).toBe(asked)
    await expectServes(MODELS.namaste, '2.0')
  })

  it('installs the lower version when the command is a signed rollback', async () => {
    const ev = await agent.updater.deploy(deployCmd(builds.v15, priv, { rollback: true }))
    expect(ev.kind).toBe('activated')
    expect(agent.slots.active('wake')).toBe('a')
    await expectServes(MODELS.helloOld, '1.5')
  })

  it('a rollback command returns to the previous version in the other slot [EF-4.7]', async () => {
    agent.events = []
    const ev = await agent.updater.rollback(rollbackCmd('wake', priv))
    expect(ev).toMatchObject({ kind: 'rolled_back', model: 'wake', version: '2.0' })
    expect(agent.slots.active('wake')).toBe('b')
    await expectServes(MODELS.namaste, '2.0')
  })

  it('a rollback to a version no slot holds fails with EF_ERR_NO_ROLLBACK_TARGET', async () => {
    const ev = await agent.updater.rollback(rollbackCmd('wake', priv, '0.9'))
    expect(ev).toMatchObject({ kind: 'failed', code: 'EF_ERR_NO_ROLLBACK_TARGET' })
    expect((await agent.updater.rollback(rollbackCmd('nosuch', priv))).code).toBe('EF_ERR_NO_ROLLBACK_TARGET')
    expect(serving()?.version).toBe('2.0')
  })

  it('deploys 3.0 over the older slot, fetching exactly the chunks it no longer holds', async () => {
    // 3.0 has the bytes of 1.0, whose slot was overwritten by 1.5: every chunk comes over the network again.
    const asked = transport.requested.length
    const ev = await agent.updater.deploy(deployCmd(builds.v3, priv))
    expect(ev.kind).toBe('activated')
    expect(agent.slots.active('wake')).toBe('a')
    expect(transport.requested.length - asked).toBe(builds.v3.chunked.chunks.length)
    expect(agent.slots.verified('wake', 'b', trust)?.manifest.version).toBe('2.0')
    await expectServes(MODELS.hello, '3.0')
  })

  it('restore() after a restart serves the active slot', async () => {
    await agent.host.close()
    agent = startAgent()
    expect(agent.host.get('wake')).toBeUndefined()
    await agent.updater.restore()
    expect(agent.events).toEqual([])
    expect(serving()?.slot).toBe('a')
    await expectServes(MODELS.hello, '3.0')
  })

  it('a damaged active slot: restore falls back to the other verified slot and reports rolled_back', async () => {
    await agent.host.close()
    const modelFile = agent.slots.modelPath('wake', 'a')
    const bytes = readFileSync(modelFile)
    bytes[Math.floor(bytes.length / 2)] ^= 0x01
    writeFileSync(modelFile, bytes)
    agent = startAgent()
    await agent.updater.restore()
    expect(agent.events).toHaveLength(1)
    expect(agent.events[0]).toMatchObject({
      kind: 'rolled_back',
      model: 'wake',
      version: '2.0',
      code: 'EF_ERR_ARTIFACT_HASH_MISMATCH',
    })
    expect(agent.slots.active('wake')).toBe('b')
    await expectServes(MODELS.namaste, '2.0')
    bytes[Math.floor(bytes.length / 2)] ^= 0x01 // repaired, for the next case
    writeFileSync(modelFile, bytes)
  })

  it('a tampered manifest in the active slot: restore falls back and reports why (EF_ERR_SIGNATURE_INVALID)', async () => {
    await agent.host.close()
    const m = join(dirname(agent.slots.modelPath('wake', 'b')), 'manifest.json')
    writeFileSync(m, readFileSync(m, 'utf8').replace('"version":"2.0"', '"version":"9.0"'))
    agent = startAgent()
    await agent.updater.restore()
    expect(agent.events).toHaveLength(1)
    expect(agent.events[0]).toMatchObject({
      kind: 'rolled_back',
      model: 'wake',
      version: '3.0',
      code: 'EF_ERR_SIGNATURE_INVALID',
    })
    expect(agent.slots.active('wake')).toBe('a')
    await expectServes(MODELS.hello, '3.0')
  })

  it('a build whose requirements this agent meets deploys as any other [EF-3.8]', async () => {
    const met = await buildWake(MODELS.hello, {
      key: priv,
      model: 'wake-req',
      version: '1.1',
      requires: { agent: '0.1.0', ort: '1.30' },
    })
    transport.add(met)
    const ev = await agent.updater.deploy(deployCmd(met, priv))
    expect(ev, JSON.stringify(ev)).toMatchObject({ kind: 'activated', version: '1.1' })
    expect(agent.host.get('wake-req')?.manifest.requires).toEqual({ agent: '0.1.0', ort: '1.30' })
  })
})
