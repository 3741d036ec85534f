// Broadcast pacing and repair [EF-2.7] with a real store and blob store, a
// publish that records what went out, and a clock that only the test moves:
// "does not wait" is checked as "everything went out while no time passed".
// Agent packages with a chunk list take the same path [EF-11.4].
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pino from 'pino'
import { PROTOCOL_VERSION, chunkArtifact, parseTopic, type FetchRequest } from '@edgefleet/shared'
import { HubStore } from '../../src/store/index.js'
import { BlobStore } from '../../src/store/blobs.js'
import { Distributor, defaultDistributorOptions, type DistributorOptions } from '../../src/distribution/broadcast.js'

const CHUNKS = 40
const CHUNK_BYTES = 1024

describe('Distributor', () => {
  let tmp: string
  let store: HubStore
  let blobs: BlobStore
  let artifact: string
  let clock: number
  let published: string[]
  let dist: Distributor | undefined

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ef-broadcast-'))
    store = HubStore.open(join(tmp, 'hub.db'))
    blobs = new BlobStore(join(tmp, 'blobs'))
    const data = randomBytes(CHUNKS * CHUNK_BYTES)
    const cuts = Array.from({ length: CHUNKS - 1 }, (_, i) => (i + 1) * CHUNK_BYTES)
    const a = chunkArtifact(data, cuts)
    artifact = blobs.put(data)
    store.registry.insertArtifact(a.digest, a.size, a.chunks, 0)
    clock = 1_000_000
    published = []
  })

  afterEach(() => {
    dist?.close()
    store.close()
    rmSync(tmp, { recursive: true, force: true })
  })

  const start = (receivers: number, opts: Partial<DistributorOptions> = {}) => {
    dist = new Distributor({
      store,
      blobs,
      log: pino({ level: 'silent' }),
      publish: (topic) => {
        published.push(topic)
        return Promise.resolve()
      },
      now: () => clock,
      window: 2,
      aheadChunks: 4,
      expectedReceivers: () => receivers,
      ...opts,
    })
    return dist
  }
  const req = (deviceId: string, op: FetchRequest['op'], extra: Partial<FetchRequest> = {}): FetchRequest => ({
    v: PROTOCOL_VERSION,
    deviceId,
    artifact,
    op,
    ...extra,
  })
  const all = Array.from({ length: CHUNKS }, (_, i) => i)
  const settle = () => new Promise((resolve) => setImmediate(resolve))
  /** Delivers what was broadcast to `acking`, which confirm each chunk, until nothing more goes out. */
  const run = async (d: Distributor, acking: string[]) => {
    let seen = 0
    for (;;) {
      await settle()
      if (published.length === seen) return
      for (const topic of published.slice(seen)) {
        const t = parseTopic(topic)
        if (t?.kind !== 'chunk') continue
        for (const id of acking) d.handle(req(id, 'ack', { last: t.index }))
      }
      seen = published.length
    }
  }
  const repairsTo = (device: string) =>
    published.filter((t) => {
      const p = parseTopic(t)
      return p?.kind === 'repair' && p.deviceId === device
    }).length

  it('broadcasts everything to acknowledging receivers while one never acknowledges, then repairs it', async () => {
    const dist = start(4)
    for (const id of ['a', 'b', 'c', 'silent']) dist.handle(req(id, 'join', { chunks: all }))
    await run(dist, ['a', 'b', 'c'])
    // No time passed: the broadcast did not wait for the silent receiver to time out.
    expect(dist.stats.broadcastChunks).toBe(CHUNKS)
    expect(dist.stats.repairChunks).toBe(0)

    // It asks for everything at once: still on its way (it has just been sent), so nothing is sent twice...
    dist.handle(req('silent', 'repair', { chunks: all }))
    await settle()
    expect(repairsTo('silent')).toBe(0)
    // ...until it stayed silent for the receiver timeout: then each chunk goes to it alone, once.
    clock += defaultDistributorOptions.receiverTimeoutMs
    dist.handle(req('silent', 'repair', { chunks: all }))
    await run(dist, [])
    expect(repairsTo('silent')).toBe(CHUNKS)
    expect(dist.stats.broadcastChunks).toBe(CHUNKS)
  })

  it('reads the expected receivers at most once a second while a wave joins, not once per join', async () => {
    let reads = 0
    const distributor = start(0, {
      expectedReceivers: () => {
        reads++
        return 1000
      },
    })
    for (let i = 0; i < 999; i++) distributor.handle(req(`w${i}`, 'join', { chunks: all }))
    expect(reads).toBe(1) // 999 joins in the same second: one count
    expect(distributor.receiving('w0')).toBe(true) // gathering: taking part, though it confirmed nothing yet
    clock += 1000
    distributor.handle(req('w999', 'join', { chunks: all }))
    expect(reads).toBe(2)
    // The last expected receiver joined: the broadcast starts without waiting out the gathering.
    await settle()
    expect(published.length).toBeGreaterThan(0)
    expect(distributor.receiving('nobody')).toBe(false)
  })

  it('waits for the slowest receiver when no straggler may be left behind (what the default avoids)', async () => {
    const d = start(4, { stragglerShare: 0 })
    for (const id of ['a', 'b', 'c', 'silent']) d.handle(req(id, 'join', { chunks: all }))
    await run(d, ['a', 'b', 'c'])
    expect(d.stats.broadcastChunks).toBe(4) // aheadChunks, then nothing until the silent one times out
  })

  it('does not repair chunks still on their way to a receiver that keeps acknowledging, after the broadcast ended', async () => {
    const dist = start(2)
    for (const id of ['a', 'slow']) dist.handle(req(id, 'join', { chunks: all }))
    await run(dist, ['a'])
    expect(dist.stats.broadcastChunks).toBe(CHUNKS)
    // The slow receiver confirmed half of it and stalls long after the last chunk left.
    dist.handle(req('slow', 'ack', { last: CHUNKS / 2 - 1 }))
    clock += 2 * defaultDistributorOptions.gatherMs
    dist.handle(req('slow', 'ack', { last: CHUNKS / 2 }))
    dist.handle(req('slow', 'repair', { chunks: all.slice(CHUNKS / 2 + 1) }))
    await settle()
    expect(dist.stats.repairChunks).toBe(0)
    expect(dist.stats.prematureRepairs).toBe(CHUNKS / 2 - 1)
  })

  it('an agent package with a chunk list is broadcast like a build: each chunk once to all receivers [EF-11.4]', async () => {
    const data = randomBytes(CHUNKS * CHUNK_BYTES + 17)
    const cuts = Array.from({ length: CHUNKS }, (_, i) => (i + 1) * CHUNK_BYTES)
    const pkg = chunkArtifact(data, cuts)
    blobs.put(data)
    const release = { name: 'edgefleet-agent' as const, version: '0.2.0', arch: 'linux-x64' as const }
    store.agentReleases.insert(
      { ...release, runtime: 'native', sha256: pkg.digest, size: pkg.size, chunks: pkg.chunks },
      'sig',
      0,
    )
    const distributor = start(3)
    const every = pkg.chunks.map((_, i) => i)
    for (const id of ['a', 'b', 'c'])
      distributor.handle({ ...req(id, 'join', { chunks: every }), artifact: pkg.digest })
    // The acks name the package, not the build the helper's requests name.
    let seen = 0
    for (;;) {
      await settle()
      if (published.length === seen) break
      for (const topic of published.slice(seen)) {
        const t = parseTopic(topic)
        if (t?.kind === 'chunk')
          for (const id of ['a', 'b', 'c'])
            distributor.handle({ ...req(id, 'ack', { last: t.index }), artifact: pkg.digest })
      }
      seen = published.length
    }
    expect(distributor.stats.broadcastChunks).toBe(CHUNKS + 1)
    expect(distributor.stats.broadcastBytes).toBe(data.length)
    expect(distributor.stats.repairChunks).toBe(0)
    expect(new Set(published).size).toBe(CHUNKS + 1)
  })

  it('a fresh join (the agent restarted its download) gets what was broadcast meanwhile at once; a re-join waits for it', async () => {
    const distributor = start(2)
    for (const id of ['a', 'b']) distributor.handle(req(id, 'join', { chunks: all }))
    await run(distributor, ['a'])
    expect(distributor.stats.broadcastChunks).toBe(CHUNKS)
    // b confirmed the first half, then its connection dropped: the rest is most likely still on its way.
    distributor.handle(req('b', 'ack', { last: CHUNKS / 2 - 1 }))
    distributor.handle(req('b', 'join', { chunks: all.slice(CHUNKS / 2) }))
    await settle()
    expect(repairsTo('b')).toBe(0)
    expect(distributor.stats.prematureRepairs).toBe(CHUNKS / 2)
    // b's process restarted and starts the download anew: nothing is on its way to it any more.
    distributor.handle(req('b', 'join', { chunks: all.slice(CHUNKS / 2), fresh: true }))
    await run(distributor, [])
    expect(repairsTo('b')).toBe(CHUNKS / 2)
    expect(distributor.stats.broadcastChunks).toBe(CHUNKS)
  })

  it('broadcasts again to a later wave once the earlier receivers are done', async () => {
    const d = start(2)
    for (const id of ['a', 'b']) d.handle(req(id, 'join', { chunks: all }))
    await run(d, ['a', 'b'])
    for (const id of ['a', 'b']) d.handle(req(id, 'done'))
    clock += 60_000
    for (const id of ['c', 'e']) d.handle(req(id, 'join', { chunks: all }))
    await run(d, ['c', 'e'])
    expect(d.stats.broadcastChunks).toBe(2 * CHUNKS)
    expect(d.stats.repairChunks).toBe(0)
  })
})
