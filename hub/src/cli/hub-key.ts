// `edgefleet hub key`, `edgefleet hub rotate-key`: the hub's signing key and
// its rotation [EF-3.6] over the HTTP API.
import { command, type Command } from './command.js'

interface KeyRotationStep {
  prev: string
  next: string
  at: number
}

const hubKey = command({
  name: 'hub key',
  summary: ['hub key', "the hub's current public key and its rotations"],
  help: `edgefleet hub key [--json]`,
  options: {},
  async run({ hub, emit }) {
    const r = await hub.request<{ publicKey: string; chain: KeyRotationStep[] }>('GET', '/api/v1/hub/key')
    emit(r, () =>
      [
        `hub public key: ${r.publicKey}`,
        ...r.chain.map((s) => `  rotated ${new Date(s.at).toISOString()}: ${s.prev} -> ${s.next}`),
      ].join('\n'),
    )
    return 0
  },
})

const hubRotateKey = command({
  name: 'hub rotate-key',
  summary: ['hub rotate-key', 'new hub signing key, announced to every agent signed by the old one (admin)'],
  help: `edgefleet hub rotate-key [--json]   (agents move to the new key; commands signed by the old one are refused)`,
  options: {},
  async run({ hub, emit }) {
    const r = await hub.request<{ publicKey: string; previousKey: string; announced: number }>(
      'POST',
      '/api/v1/hub/rotate-key',
    )
    emit(
      r,
      () =>
        `hub signing key rotated\n  old: ${r.previousKey}\n  new: ${r.publicKey}\nannounced to ${r.announced} device(s); offline ones learn it when they reconnect.\nNew devices pin the new key (device add prints it).`,
    )
    return 0
  },
})

export const hubKeyCommands: Command[] = [hubKey, hubRotateKey]
