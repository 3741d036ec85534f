// Agent updates on the hub [EF-11.9], on a real SQLite store: every command
// is recorded before it goes out; device events move the record forward only;
// a device that comes back is sent what it may have missed with the original
// command id (never what it is already handing over, never a finished one);
// an idle record of an online device is resent; a handed-over update is
// settled after its deadline from what the device runs. A release's chunk
// list goes only to agents that say they receive packages by chunks [EF-11.4],
// and the broadcast counts the devices still to receive a package.
import { generateKeyPairSync } from 'node:crypto'
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { verifyDocument, type DeviceState, type FirmwareProfile } from '@edgefleet/shared'
import { HubStore } from '../../src/store/index.js'
import { openDb } from '../../src/store/db.js'
import { AgentUpdates, checkAgentDeadline } from '../../src/agent-releases/updates.js'

const release = (version: string) => ({
  name: 'edgefleet-agent' as const,
  version,
  arch: 'linux-x64' as const,
  runtime: 'native' as const,
  sha256: 'a'.repeat(64),
  size: 1000,
})

let store: HubStore
let clock: number
let sent: { deviceId: string; id: string; version: string }[]
let updates: AgentUpdates

/** An AgentUpdates on the test store whose commands go to `send`; `extra` sets what a test varies. */
function newUpdates(
  send: (deviceId: string, body: unknown, id?: string) => Promise<string>,
  extra: Partial<ConstructorParameters<typeof AgentUpdates>[0]> = {},
): AgentUpdates {
  return new AgentUpdates({
    store,
    keys: { privateKey: generateKeyPairSync('ed25519').privateKey },
    profiles: new Map([['industrial-x86', { arch: 'x86_64' } as FirmwareProfile]]),
    now: () => clock,
    log: pino({ level: 'silent' }),
    commands: { send: (deviceId, _type, body, id) => send(deviceId, body, id) },
    httpBase: () => 'http://hub',
    ...extra,
  })
}

const state = (deviceId: string, online: boolean, agentVersion: string): DeviceState =>
  ({ v: 1, deviceId, online, models: [], agentVersion }) as unknown as DeviceState

beforeEach(() => {
  store = new HubStore(openDb({ path: ':memory:' }))
  clock = 1_000_000
  sent = []
  store.agentReleases.insert(release('0.2.0'), 'sig', clock)
  for (const id of ['d1', 'd2']) store.devices.insert(id, 'industrial-x86', {}, 'hash', clock)
  updates = newUpdates((deviceId, body, id) => {
    sent.push({ deviceId, id: id ?? 'fresh', version: (body as { release: { version: string } }).release.version })
    return Promise.resolve(id ?? 'fresh')
  })
})
afterEach(() => store.close())

const event = (cmdId: string, kind: string, code?: string) => ({
  deviceId: 'd1',
  cmdId,
  kind,
  ...(code ? { code } : {}),
})

describe('the confirm deadline [EF-11.7]', () => {
  it('an update that names none gets the hub default (hub start --agent-deadline-ms); a named one wins', async () => {
    const bodies: { deadlineMs: number }[] = []
    const withDefault = newUpdates(
      (_deviceId, body) => {
        bodies.push(body as { deadlineMs: number })
        return Promise.resolve('id')
      },
      { defaultDeadlineMs: checkAgentDeadline(5000) },
    )
    const rollout = await withDefault.sendTo(store.devices.list(), { version: '0.2.0', origin: 'rollout:r#1' })
    await withDefault.sendTarget({ target: 'device=d1', version: '0.2.0', deadlineMs: 60_000 })
    expect(bodies.map((b) => b.deadlineMs)).toEqual([5000, 5000, 60_000])
    expect(store.agentUpdates.get(rollout.sent[0].cmdId)?.deadlineMs).toBe(5000)
  })

  it.each([0, 999, 3_600_001, 1.5, Number.NaN])('a default of %s ms: EF_ERR_CONFIG_INVALID', (ms) => {
    expect(() => checkAgentDeadline(ms)).toThrow(expect.objectContaining({ code: 'EF_ERR_CONFIG_INVALID' }))
  })
})

describe('agent packages over the chunk broadcast [EF-11.4]', () => {
  const chunks = [
    { digest: 'b'.repeat(64), size: 600 },
    { digest: 'c'.repeat(64), size: 400 },
  ]

  it('sends the chunk list, signed with the rest, only to an agent whose state says it takes chunks', async () => {
    const keys = generateKeyPairSync('ed25519')
    store.agentReleases.insert({ ...release('0.3.0'), sha256: 'd'.repeat(64), chunks }, 'sig', clock)
    expect(store.agentReleases.get('0.3.0', 'linux-x64')?.release.chunks).toEqual(chunks)
    const bodies = new Map<string, { release: Record<string, unknown>; releaseSig: string }>()
    const chunked = newUpdates(
      (deviceId, body) => {
        bodies.set(deviceId, body as { release: Record<string, unknown>; releaseSig: string })
        return Promise.resolve('id')
      },
      { keys: { privateKey: keys.privateKey } },
    )
    store.devices.setState('d1', { ...state('d1', true, '0.1.0'), agentChunks: true }, clock)
    store.devices.setState('d2', state('d2', true, '0.1.0'), clock)
    await chunked.sendTarget({ target: 'profile=industrial-x86', version: '0.3.0' })
    const [one, two] = [bodies.get('d1'), bodies.get('d2')]
    expect(one?.release.chunks).toEqual(chunks)
    expect(two?.release).not.toHaveProperty('chunks')
    for (const body of [one, two])
      expect(body && verifyDocument(body.release, body.releaseSig, keys.publicKey)).toBe(true)
  })

  it('counts the devices a package broadcast waits for: open and not yet downloaded, online unless asked', async () => {
    store.agentReleases.insert({ ...release('0.3.0'), sha256: 'd'.repeat(64), chunks }, 'sig', clock)
    const out = await updates.sendTarget({ target: 'profile=industrial-x86', version: '0.3.0' })
    store.devices.setState('d1', state('d1', true, '0.1.0'), clock)
    expect(store.agentUpdates.openReceivers('d'.repeat(64))).toBe(1)
    expect(store.agentUpdates.openReceivers('d'.repeat(64), true)).toBe(2)
    expect(store.agentUpdates.openReceivers('a'.repeat(64), true)).toBe(0) // another release's package
    const d1 = out.sent.find((x) => x.device === 'd1')?.cmdId ?? ''
    store.agentUpdates.applyEvent({ deviceId: 'd1', cmdId: d1, kind: 'staged' }, ++clock)
    expect(store.agentUpdates.openReceivers('d'.repeat(64))).toBe(0)
  })
})

describe('agent updates [EF-11.9]', () => {
  it('records each command before sending it; events move it forward only, never out of a final state', async () => {
    const out = await updates.sendTarget({ target: 'device=d1', version: '0.2.0' })
    const { cmdId } = out.sent[0]
    expect(sent).toEqual([{ deviceId: 'd1', id: cmdId, version: '0.2.0' }])
    expect(store.agentUpdates.get(cmdId)).toMatchObject({ state: 'sent', deviceId: 'd1', batch: out.batch })
    expect(store.agentUpdates.applyEvent(event(cmdId, 'staged'), ++clock)).toBe(true)
    // A repeated or late event does not move it back; another device's event with this id changes nothing.
    expect(store.agentUpdates.applyEvent(event(cmdId, 'received'), ++clock)).toBe(false)
    expect(store.agentUpdates.applyEvent({ ...event(cmdId, 'agent_updated'), deviceId: 'd2' }, ++clock)).toBe(false)
    expect(store.agentUpdates.get(cmdId)?.state).toBe('staged')
    expect(store.agentUpdates.applyEvent(event(cmdId, 'agent_updated'), ++clock)).toBe(true)
    expect(store.agentUpdates.applyEvent(event(cmdId, 'staged'), ++clock)).toBe(false)
    expect(updates.finished(out.batch).get('d1')).toEqual({ state: 'activated', code: null })
    // A later rollback report is news: the restored agent runs.
    expect(store.agentUpdates.applyEvent(event(cmdId, 'agent_rolled_back', 'EF_ERR_AGENT_ROLLED_BACK'), ++clock)).toBe(
      true,
    )
    expect(updates.finished(out.batch).get('d1')).toEqual({ state: 'failed', code: 'EF_ERR_AGENT_ROLLED_BACK' })
  })

  it('a device that comes back is resent what it may have missed, with the original id; not what it is handing over', async () => {
    const first = (await updates.sendTarget({ target: 'device=d1', version: '0.2.0' })).sent[0].cmdId
    const second = (await updates.sendTarget({ target: 'device=d2', version: '0.2.0' })).sent[0].cmdId
    store.agentUpdates.applyEvent({ deviceId: 'd2', cmdId: second, kind: 'staged' }, ++clock)
    sent = []
    await updates.resendOpen('d1')
    await updates.resendOpen('d2')
    expect(sent).toEqual([{ deviceId: 'd1', id: first, version: '0.2.0' }])
    store.agentUpdates.applyEvent(event(first, 'rejected', 'EF_ERR_AGENT_DOWNGRADE'), ++clock)
    sent = []
    await updates.resendOpen('d1')
    expect(sent).toEqual([]) // a finished command is never sent again
  })

  it('the periodic pass resends idle open commands of online devices only', async () => {
    const cmdId = (await updates.sendTarget({ target: 'device=d1', version: '0.2.0' })).sent[0].cmdId
    sent = []
    clock += 60_000
    await updates.tick(30_000)
    expect(sent).toEqual([]) // offline: nothing to send to
    store.devices.setState('d1', state('d1', true, '0.1.0'), clock)
    await updates.tick(30_000)
    expect(sent).toEqual([{ deviceId: 'd1', id: cmdId, version: '0.2.0' }])
    sent = []
    await updates.tick(30_000) // just resent: not idle
    expect(sent).toEqual([])
  })

  it('a staged update past its deadline is settled: confirmed when the device runs it, EF_ERR_AGENT_CONFIRM_TIMEOUT otherwise', async () => {
    const out = await updates.sendTo(store.devices.list(), { version: '0.2.0', deadlineMs: 10_000, origin: 'test' })
    const [one, two] = out.sent.map((x) => x.cmdId)
    for (const [device, cmdId] of [
      ['d1', one],
      ['d2', two],
    ] as const)
      store.agentUpdates.applyEvent({ deviceId: device, cmdId, kind: 'staged' }, clock)
    store.devices.setState('d1', state('d1', true, '0.2.0'), clock)
    store.devices.setState('d2', state('d2', true, '0.1.0'), clock)
    clock += 20_000 // past the deadline, within the grace
    await updates.tick(1000)
    expect(updates.finished(out.batch).size).toBe(0)
    clock += 30_000
    await updates.tick(1000)
    expect(updates.finished(out.batch)).toEqual(
      new Map([
        ['d1', { state: 'activated', code: null }],
        ['d2', { state: 'failed', code: 'EF_ERR_AGENT_CONFIRM_TIMEOUT' }],
      ]),
    )
    expect(sent.filter((x) => x.id === one || x.id === two)).toHaveLength(2) // staged ones were never resent
  })

  it('an unregistered version is EF_ERR_AGENT_RELEASE_NOT_FOUND; a device of an unknown profile is skipped with EF_ERR_PROFILE_UNKNOWN', async () => {
    await expect(updates.sendTarget({ target: 'device=d1', version: '9.9.9' })).rejects.toMatchObject({
      code: 'EF_ERR_AGENT_RELEASE_NOT_FOUND',
    })
    store.devices.insert('d3', 'no-such-profile', {}, 'hash', clock)
    const out = await updates.sendTarget({ target: 'device=d3', version: '0.2.0' })
    expect(out.skipped).toEqual([expect.objectContaining({ device: 'd3', code: 'EF_ERR_PROFILE_UNKNOWN' })])
    expect(store.agentUpdates.openForDevice('d3')).toEqual([])
  })
})
