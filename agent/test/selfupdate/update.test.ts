// The device side of an agent update [EF-11.4, EF-11.5]: every refusal
// (release signature, architecture, downgrade, no launcher) comes before
// anything is downloaded or written; a package whose bytes are not the
// release's is deleted (EF_ERR_AGENT_DIGEST_MISMATCH); an archive with an
// entry outside its top folder, or a file that differs from its manifest, is
// never left in a slot (EF_ERR_AGENT_PACKAGE_INVALID); a valid one is staged
// in the slot not running with a trial in state.json, and a download
// interrupted halfway is resumed with a range request. A release with a chunk
// list comes through the models' chunk receiver instead, resumes from the
// chunks on disk, falls back to HTTP when the broadcast fails, and is still
// checked whole against the release's sha256.
import { createServer, type Server } from 'node:http'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pino from 'pino'
import { create as tarCreate } from 'tar'
import {
  PROTOCOL_VERSION,
  chunkArtifact,
  fixedBoundaries,
  generateSigningKeys,
  privateKeyFromPem,
  sha256Hex,
  signDocument,
  type AgentRelease,
  type AgentUpdateCmd,
} from '@edgefleet/shared'
import { HubTrust } from '../../src/trust.js'
import { AgentSelfUpdater, type SelfUpdateDeps } from '../../src/selfupdate/update.js'
import { readSlotState, slotsDir } from '../../src/selfupdate/state.js'
import type { EventReport } from '../../src/updater/model-source.js'
import { FakeTransport, tempDir } from '../fixtures/agent.js'

const keys = generateSigningKeys()
const priv = privateKeyFromPem(keys.privateKeyPem)
const { dir: work, cleanup } = tempDir()
afterAll(cleanup)

/** A small package in the agent-package layout: top folder, dist/edgefleet-agent.mjs, manifest with hashes. */
async function makePackage(
  version: string,
  opts: { tamper?: boolean; stray?: boolean; fillerBytes?: number } = {},
): Promise<{ bytes: Buffer; release: AgentRelease }> {
  const stage = join(work, `stage-${version}-${Math.random().toString(16).slice(2)}`)
  const top = `edgefleet-agent-${version}-linux-x64`
  mkdirSync(join(stage, top, 'dist'), { recursive: true })
  const bundle = `console.log('agent ${version}')\n`
  writeFileSync(join(stage, top, 'dist', 'edgefleet-agent.mjs'), opts.tamper ? 'tampered\n' : bundle)
  const manifest = {
    name: 'edgefleet-agent',
    version,
    arch: 'linux-x64',
    runtime: 'native',
    node: '>=20.19',
    files: { 'dist/edgefleet-agent.mjs': sha256Hex(bundle) } as Record<string, string>,
  }
  if (opts.fillerBytes) {
    // Incompressible bytes, so the package spans several chunks.
    const filler = randomBytes(opts.fillerBytes)
    writeFileSync(join(stage, top, 'dist', 'filler.bin'), filler)
    manifest.files['dist/filler.bin'] = sha256Hex(filler)
  }
  writeFileSync(join(stage, top, 'edgefleet-package.json'), JSON.stringify(manifest))
  if (opts.stray) writeFileSync(join(stage, 'stray.txt'), 'outside the top folder')
  const file = join(stage, 'p.tar.gz')
  await tarCreate({ gzip: true, file, cwd: stage, portable: true }, opts.stray ? [top, 'stray.txt'] : [top])
  const bytes = readFileSync(file)
  return {
    bytes,
    release: {
      name: 'edgefleet-agent',
      version,
      arch: 'linux-x64',
      runtime: 'native',
      sha256: sha256Hex(bytes),
      size: bytes.length,
    },
  }
}

/** Serves `bodies[path]` with range support; counts requests and their Range headers. */
const bodies = new Map<string, Buffer>()
const ranges: string[] = []
let server: Server
let base = ''
beforeAll(async () => {
  server = createServer((req, res) => {
    const body = bodies.get(req.url ?? '')
    if (!body) return res.writeHead(404).end()
    ranges.push(req.headers.range ?? '')
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    if (!m) return res.writeHead(200, { 'content-length': body.length }).end(body)
    const start = Number(m[1])
    const end = m[2] ? Math.min(Number(m[2]), body.length - 1) : body.length - 1
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}` }).end(body.subarray(start, end + 1))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => server.close())

function cmd(release: AgentRelease, extra: Partial<AgentUpdateCmd> = {}): AgentUpdateCmd {
  return {
    v: PROTOCOL_VERSION,
    id: `cmd-${Math.random().toString(16).slice(2)}`,
    deviceId: 'dev-1',
    issuedAt: 1,
    sig: 'x'.repeat(86),
    type: 'agent-update',
    release,
    releaseSig: signDocument(release, priv),
    deadlineMs: 60_000,
    url: `/pkg/${release.version}`,
    httpBase: base,
    ...extra,
  }
}

function updater(dataDir: string, over: Partial<SelfUpdateDeps> = {}) {
  const events: EventReport[] = []
  let handedOver = 0
  const selfUpdater = new AgentSelfUpdater({
    dataDir,
    runningVersion: '1.0.0',
    runningSlot: 'base',
    arch: 'linux-x64',
    trust: new HubTrust(keys.publicKey),
    fetch: { deviceId: 'dev-1', secret: 's', timeoutMs: 10_000 },
    report: (e) => events.push(e),
    log: pino({ level: 'silent' }),
    now: () => 1_000,
    handOver: () => handedOver++,
    ...over,
  })
  return { selfUpdater, events, handedOver: () => handedOver }
}

describe('agent-update refusals: nothing is downloaded or written', () => {
  it.each([
    [
      'a release signature by another key',
      'EF_ERR_SIGNATURE_INVALID',
      {},
      (r: AgentRelease) => ({ releaseSig: signDocument(r, privateKeyFromPem(generateSigningKeys().privateKeyPem)) }),
    ],
    ['a package for another architecture', 'EF_ERR_AGENT_ARCH', { arch: 'linux-arm64' as const }, () => ({})],
    ['an older version without rollback', 'EF_ERR_AGENT_DOWNGRADE', { runningVersion: '2.0.0' }, () => ({})],
    ['an agent not started by the launcher', 'EF_ERR_AGENT_UPDATE_UNSUPPORTED', { handOver: undefined }, () => ({})],
  ])('%s: %s', async (_what, code, deps, extra) => {
    const { release, bytes } = await makePackage('1.5.0')
    bodies.set('/pkg/1.5.0', bytes)
    const before = ranges.length
    const dataDir = join(work, `refuse-${code}`)
    const { selfUpdater, events } = updater(dataDir, deps)
    const ev = await selfUpdater.apply(cmd(release, extra(release)))
    expect(ev).toMatchObject({ kind: 'rejected', code })
    expect(events).toEqual([ev])
    expect(ranges.length).toBe(before)
    expect(existsSync(slotsDir(dataDir))).toBe(false)
  })

  it('an older version with the signed rollback flag is staged', async () => {
    const { release, bytes } = await makePackage('0.9.0')
    bodies.set('/pkg/0.9.0', bytes)
    const dataDir = join(work, 'rollback-ok')
    const { selfUpdater } = updater(dataDir)
    expect(await selfUpdater.apply(cmd(release, { rollback: true }))).toMatchObject({ kind: 'staged' })
  })
})

describe('agent-update staging', () => {
  it('stages a valid package in slot a with a trial and hands over', async () => {
    const { release, bytes } = await makePackage('1.1.0')
    bodies.set('/pkg/1.1.0', bytes)
    const dataDir = join(work, 'stage-ok')
    const { selfUpdater, events, handedOver } = updater(dataDir)
    const c = cmd(release)
    expect(await selfUpdater.apply(c)).toMatchObject({ kind: 'staged', cmdId: c.id })
    expect(events.map((e) => e.kind)).toEqual(['received', 'downloaded', 'staged'])
    const dir = slotsDir(dataDir)
    expect(readFileSync(join(dir, 'a', 'dist', 'edgefleet-agent.mjs'), 'utf8')).toContain('agent 1.1.0')
    expect(readSlotState(dir)).toMatchObject({
      current: 'a',
      trial: { slot: 'a', version: '1.1.0', from: 'base', fromVersion: '1.0.0', cmdId: c.id, starts: 0 },
    })
    expect(readdirSync(join(dir, 'incoming'))).toEqual([])
    await new Promise((r) => setImmediate(r))
    expect(handedOver()).toBe(1)
  })

  it('bytes other than the release (EF_ERR_AGENT_DIGEST_MISMATCH) are deleted; no slot is written', async () => {
    const { release, bytes } = await makePackage('1.2.0')
    const evil = Buffer.from(bytes)
    evil[evil.length - 5] ^= 0xff
    bodies.set('/pkg/1.2.0', evil)
    const dataDir = join(work, 'digest')
    const { selfUpdater } = updater(dataDir)
    expect(await selfUpdater.apply(cmd(release))).toMatchObject({
      kind: 'rejected',
      code: 'EF_ERR_AGENT_DIGEST_MISMATCH',
    })
    expect(readdirSync(slotsDir(dataDir))).toEqual(['incoming'])
    expect(readdirSync(join(slotsDir(dataDir), 'incoming'))).toEqual([])
  })

  it.each([
    ['a file that differs from its manifest', { tamper: true }],
    ['an entry outside the top folder', { stray: true }],
  ])('%s: EF_ERR_AGENT_PACKAGE_INVALID, no slot left behind', async (_what, opts) => {
    const { release, bytes } = await makePackage('1.3.0', opts)
    bodies.set('/pkg/1.3.0', bytes)
    const dataDir = join(work, `invalid-${Object.keys(opts)[0]}`)
    const { selfUpdater } = updater(dataDir)
    expect(await selfUpdater.apply(cmd(release))).toMatchObject({
      kind: 'rejected',
      code: 'EF_ERR_AGENT_PACKAGE_INVALID',
    })
    expect(readdirSync(slotsDir(dataDir)).sort()).toEqual(['incoming'])
    expect(readSlotState(slotsDir(dataDir))).toEqual({ v: 1, current: 'base' })
  })

  it('resumes an interrupted download with a range request', async () => {
    const { release, bytes } = await makePackage('1.4.0')
    bodies.set('/pkg/1.4.0', bytes)
    const dataDir = join(work, 'resume')
    const incoming = join(slotsDir(dataDir), 'incoming')
    mkdirSync(incoming, { recursive: true })
    const half = Math.floor(bytes.length / 2)
    writeFileSync(join(incoming, `${release.sha256}.tar.gz.part`), bytes.subarray(0, half))
    const { selfUpdater } = updater(dataDir)
    expect(await selfUpdater.apply(cmd(release))).toMatchObject({ kind: 'staged' })
    expect(ranges.at(-1)).toBe(`bytes=${half}-`)
  })
})

describe("agent packages by chunks, the models' path [EF-11.4]", () => {
  /** The package cut into 1 KiB chunks, its release listing them, and a transport serving them. */
  async function chunkedPackage(version: string) {
    const { release, bytes } = await makePackage(version, { fillerBytes: 12 * 1024 })
    const chunked = chunkArtifact(bytes, fixedBoundaries(bytes.length, 1024))
    const withChunks: AgentRelease = { ...release, chunks: chunked.chunks }
    return { release: withChunks, bytes, chunked, transport: new FakeTransport().add({ bytes, chunked }) }
  }
  const chunkPath = (transport: FakeTransport, timeoutMs = 5000) => ({ chunks: { transport, window: 4, timeoutMs } })

  it('receives the package by chunks, checks it and stages it: no HTTP request', async () => {
    const { release, chunked, transport } = await chunkedPackage('2.1.0')
    expect(chunked.chunks.length).toBeGreaterThan(1)
    const before = ranges.length
    const dataDir = join(work, 'chunks-ok')
    const { selfUpdater, events } = updater(dataDir, chunkPath(transport))
    expect(await selfUpdater.apply(cmd(release))).toMatchObject({ kind: 'staged' })
    expect(ranges.length).toBe(before)
    expect(transport.requested.length).toBe(chunked.chunks.length)
    expect(events.find((e) => e.kind === 'downloaded')).toMatchObject({
      receivedBytes: release.size,
      message: `received from MQTT ${release.size} B`,
    })
    expect(readFileSync(join(slotsDir(dataDir), 'a', 'dist', 'edgefleet-agent.mjs'), 'utf8')).toContain('agent 2.1.0')
    expect(readdirSync(join(slotsDir(dataDir), 'incoming'))).toEqual([])
  })

  it('an interrupted transfer resumes from the chunks on disk: only the missing ones are fetched again', async () => {
    const { release, bytes, chunked, transport } = await chunkedPackage('2.2.0')
    const n = chunked.chunks.length
    const late = Array.from({ length: n }, (_, i) => i).filter((i) => i >= n / 2)
    for (const i of late) transport.drop.set(i, 1_000) // the link dies halfway
    const dataDir = join(work, 'chunks-resume')
    const first = updater(dataDir, chunkPath(transport, 1500))
    // No HTTP fallback either (the hub does not serve this version): the command fails, the chunks stay.
    expect(await first.selfUpdater.apply(cmd(release))).toMatchObject({ kind: 'rejected' })
    expect(first.events.find((e) => e.kind === 'chunk_rejected')).toMatchObject({ code: 'EF_ERR_DOWNLOAD_TIMEOUT' })
    const again = new FakeTransport().add({ bytes, chunked })
    const second = updater(dataDir, chunkPath(again))
    expect(await second.selfUpdater.apply(cmd(release))).toMatchObject({ kind: 'staged' })
    expect(again.requested.sort((a, b) => a - b)).toEqual(late)
    const held = late.reduce((sum, i) => sum + chunked.chunks[i].size, 0)
    expect(second.events.find((e) => e.kind === 'downloaded')?.receivedBytes).toBe(held)
  })

  it("with --transfer http the hub's HTTP path fetches the chunks by range first: nothing over MQTT", async () => {
    const { release, bytes, transport } = await chunkedPackage('2.5.0')
    bodies.set('/pkg/2.5.0', bytes)
    const before = ranges.length
    const dataDir = join(work, 'chunks-http')
    const http = { deviceId: 'dev-1', secret: 's', prefer: true }
    const { selfUpdater, events } = updater(dataDir, { chunks: { transport, window: 4, timeoutMs: 5000, http } })
    expect(await selfUpdater.apply(cmd(release))).toMatchObject({ kind: 'staged' })
    expect(transport.requested).toEqual([])
    expect(ranges.slice(before)[0]).toMatch(/^bytes=0-\d+$/)
    expect(events.find((e) => e.kind === 'downloaded')?.message).toBe(
      `received from hub HTTP ${release.size} B, MQTT 0 B`,
    )
  })

  it('a broadcast that fails falls back to the HTTP range download', async () => {
    const { release, bytes, transport } = await chunkedPackage('2.3.0')
    transport.silent = true
    bodies.set('/pkg/2.3.0', bytes)
    const dataDir = join(work, 'chunks-fallback')
    const { selfUpdater, events } = updater(dataDir, chunkPath(transport, 1000))
    expect(await selfUpdater.apply(cmd(release))).toMatchObject({ kind: 'staged' })
    expect(events.find((e) => e.kind === 'chunk_rejected')).toMatchObject({
      code: 'EF_ERR_DOWNLOAD_TIMEOUT',
      message: expect.stringContaining('continuing over HTTP') as string,
    })
    expect(events.find((e) => e.kind === 'downloaded')?.message).toBe('received over HTTP')
  })

  it("chunks that pass their hashes but are not the release's package: EF_ERR_AGENT_DIGEST_MISMATCH, nothing kept", async () => {
    const { release, transport } = await chunkedPackage('2.4.0')
    const other = { ...release, sha256: 'f'.repeat(64) }
    transport.artifacts.set(other.sha256, transport.artifacts.get(release.sha256) as never)
    const dataDir = join(work, 'chunks-digest')
    const { selfUpdater } = updater(dataDir, chunkPath(transport))
    expect(await selfUpdater.apply(cmd(other))).toMatchObject({
      kind: 'rejected',
      code: 'EF_ERR_AGENT_DIGEST_MISMATCH',
    })
    expect(readdirSync(join(slotsDir(dataDir), 'incoming'))).toEqual([])
    expect(readSlotState(slotsDir(dataDir))).toEqual({ v: 1, current: 'base' })
  })
})
