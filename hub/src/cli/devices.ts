// `edgefleet device add`, `edgefleet devices list`: provisioning and the
// device list over the HTTP API; `device disable|enable|remove|rotate-secret`:
// each device's lifecycle [EF-1.3.3].
import { command, UsageError, type Command } from './command.js'
import { table } from './format.js'
import { keyValues } from './model-options.js'

interface Provisioned {
  id: string
  secret: string
  hubPublicKey: string
  mqttUrl: string
  profile: string
}

const deviceAdd = command({
  name: 'device add',
  summary: ['device add ID', 'provision a device; prints its secret and the hub key'],
  help: `edgefleet device add ID --profile P [--tag k=v ...] [--json]`,
  options: {
    profile: { type: 'string' },
    tag: { type: 'string', multiple: true },
  },
  async run({ args, hub, emit }) {
    const id = args.pos[0]
    const profile = args.str('profile')
    if (!id || !profile) throw new UsageError('device add needs ID and --profile P')
    const tags = Object.fromEntries(keyValues(args.strs('tag'), '--tag'))
    const r = await hub.request<Provisioned>('POST', '/api/v1/devices', { id, profile, tags })
    // `--opt=value`: base64url secrets and keys may start with '-', which `--opt value` would misread.
    emit(
      r,
      () =>
        `device ${r.id} (${r.profile}) provisioned\n  secret:         ${r.secret}\n  hub public key: ${r.hubPublicKey}\n  broker:         ${r.mqttUrl}\nStart its agent with:\n  edgefleet-agent --hub ${r.mqttUrl} --device-id ${r.id} --secret=${r.secret} --hub-key=${r.hubPublicKey} --profile ${r.profile}`,
    )
    return 0
  },
})

interface DeviceRow {
  id: string
  status: string
  profile: string
  online: boolean
  models: { name: string; version: string }[]
  tags: Record<string, string>
}

const devicesList = command({
  name: 'devices list',
  aliases: ['device list'],
  summary: ['devices list', 'list devices with profile, online state and model'],
  help: `edgefleet devices list [--json]`,
  options: {},
  async run({ hub, emit }) {
    const r = await hub.request<{ items: DeviceRow[]; total: number }>('GET', '/api/v1/devices?limit=10000')
    emit(r.items, () =>
      table(
        r.items.map((d) => ({
          id: d.id,
          profile: d.profile,
          state: d.status !== 'active' ? d.status : d.online ? 'online' : 'offline',
          models: d.models.map((m) => `${m.name}@${m.version}`).join(',') || null,
          tags:
            Object.entries(d.tags)
              .map(([k, v]) => `${k}=${v}`)
              .join(',') || null,
        })),
        ['id', 'profile', 'state', 'models', 'tags'],
      ),
    )
    return 0
  },
})

/** disable, enable, remove: one API call each, no options but the common ones. */
const lifecycle = (
  verb: 'disable' | 'enable' | 'remove',
  summary: string,
  method: 'POST' | 'DELETE',
  path: (id: string) => string,
) =>
  command({
    name: `device ${verb}`,
    summary: [`device ${verb} ID`, summary],
    help: `edgefleet device ${verb} ID [--json]`,
    options: {},
    async run({ args, hub, emit }) {
      const id = args.pos[0]
      if (!id) throw new UsageError(`device ${verb} needs ID`)
      const r = await hub.request<{ device?: { status: string } } | undefined>(method, path(encodeURIComponent(id)))
      const status = r?.device?.status ?? 'removed'
      emit({ id, status }, () => `device ${id}: ${status}`)
      return 0
    },
  })

const deviceDisable = lifecycle(
  'disable',
  'drop the device from the broker and refuse it until enabled (operator)',
  'POST',
  (id) => `/api/v1/devices/${id}/disable`,
)
const deviceEnable = lifecycle(
  'enable',
  'let a disabled device connect again (admin)',
  'POST',
  (id) => `/api/v1/devices/${id}/enable`,
)
const deviceRemove = lifecycle(
  'remove',
  'retire a device for good: disconnected, refused, history kept, id never reused (admin)',
  'DELETE',
  (id) => `/api/v1/devices/${id}`,
)

const deviceRotateSecret = command({
  name: 'device rotate-secret',
  summary: ['device rotate-secret ID', 'new device secret, printed once; the old one is refused at once (admin)'],
  help: `edgefleet device rotate-secret ID [--json]   (prints the new secret once)`,
  options: {},
  async run({ args, hub, emit }) {
    const id = args.pos[0]
    if (!id) throw new UsageError('device rotate-secret needs ID')
    const r = await hub.request<{ id: string; secret: string }>(
      'POST',
      `/api/v1/devices/${encodeURIComponent(id)}/rotate-secret`,
    )
    emit(
      r,
      () =>
        `device ${r.id}: new secret (shown once; the old one is refused from now on)
  secret: ${r.secret}
Restart its agent with --secret=${r.secret}`,
    )
    return 0
  },
})

export const deviceCommands: Command[] = [
  deviceAdd,
  devicesList,
  deviceDisable,
  deviceEnable,
  deviceRemove,
  deviceRotateSecret,
]
