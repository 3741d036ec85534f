// `edgefleet device add`, `edgefleet devices list`: provisioning and the
// device list over the HTTP API; `device disable|enable|remove|rotate-secret`:
// each device's lifecycle [EF-1.3.3].
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { command, UsageError, type Command } from './command.js'
import { table } from './format.js'
import { keyValues } from './model-options.js'
import { devicesImport } from './device-import.js'
import { deviceShow } from './device-show.js'

interface Provisioned {
  id: string
  secret: string
  hubPublicKey: string
  mqttUrl: string
  profile: string
  /** With TLS [EF-10]: the CA (PEM and its path on the hub), and the device's certificate with --cert. */
  tls?: { ca?: string; caFile?: string; cert?: string; key?: string }
}

/** Writes the device's certificate and key next to the operator (key 0600); never overwrites. */
function saveDeviceCert(dir: string, r: Provisioned): { certFile: string; keyFile: string } | undefined {
  if (!r.tls?.cert || !r.tls.key) return undefined
  const certFile = resolve(dir, `${r.id}-cert.pem`)
  const keyFile = resolve(dir, `${r.id}-key.pem`)
  writeFileSync(certFile, r.tls.cert, { flag: 'wx', mode: 0o644 })
  writeFileSync(keyFile, r.tls.key, { flag: 'wx', mode: 0o600 })
  return { certFile, keyFile }
}

function provisionedText(provisioned: Provisioned, saved?: { certFile: string; keyFile: string }): string {
  const tlsArgs = [
    ...(provisioned.tls?.caFile ? [`--ca ${provisioned.tls.caFile}`] : []),
    ...(saved ? [`--cert ${saved.certFile} --key ${saved.keyFile}`] : []),
  ].join(' ')
  return [
    `device ${provisioned.id} (${provisioned.profile}) provisioned`,
    `  secret:         ${provisioned.secret}`,
    `  hub public key: ${provisioned.hubPublicKey}`,
    `  broker:         ${provisioned.mqttUrl}`,
    ...(provisioned.tls?.caFile ? [`  hub CA:         ${provisioned.tls.caFile} (copy it to the device)`] : []),
    ...(saved
      ? [
          `  certificate:    ${saved.certFile}`,
          `  key:            ${saved.keyFile} (shown once; copy it to the device)`,
        ]
      : []),
    'Start its agent with:',
    // `--opt=value`: base64url secrets and keys may start with '-', which `--opt value` would misread.
    `  edgefleet-agent --hub ${provisioned.mqttUrl} --device-id ${provisioned.id} --secret=${provisioned.secret} --hub-key=${provisioned.hubPublicKey} --profile ${provisioned.profile}${tlsArgs ? ` ${tlsArgs}` : ''}`,
  ].join('\n')
}

const deviceAdd = command({
  name: 'device add',
  summary: ['device add ID', 'provision a device; prints its secret and the hub key'],
  help: `edgefleet device add ID --profile P [--tag k=v ...] [--cert [--out DIR]] [--json]
  --cert      also issue a TLS client certificate from the hub CA (mutual TLS; hub started with --tls);
              written to DIR/ID-cert.pem and DIR/ID-key.pem (with --json: in the output); the key is not kept
  --out DIR   where --cert writes (default: the current folder)`,
  options: {
    profile: { type: 'string' },
    tag: { type: 'string', multiple: true },
    cert: { type: 'boolean' },
    out: { type: 'string' },
  },
  async run({ args, hub, emit }) {
    const id = args.pos[0]
    const profile = args.str('profile')
    if (!id || !profile) throw new UsageError('device add needs ID and --profile P')
    const tags = Object.fromEntries(keyValues(args.strs('tag'), '--tag'))
    const cert = args.flag('cert')
    const r = await hub.request<Provisioned>('POST', '/api/v1/devices', {
      id,
      profile,
      tags,
      ...(cert ? { cert } : {}),
    })
    if (args.flag('json')) emit(r, () => '')
    else emit(r, () => provisionedText(r, saveDeviceCert(args.str('out') ?? '.', r)))
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
  agentVersion: string | null
}

const devicesList = command({
  name: 'devices list',
  aliases: ['device list'],
  summary: ['devices list', 'list devices with profile, online state, agent version and models'],
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
          agent: d.agentVersion,
          models: d.models.map((m) => `${m.name}@${m.version}`).join(',') || null,
          tags:
            Object.entries(d.tags)
              .map(([k, v]) => `${k}=${v}`)
              .join(',') || null,
        })),
        ['id', 'profile', 'state', 'agent', 'models', 'tags'],
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
    const created = await hub.request<{ id: string; secret: string }>(
      'POST',
      `/api/v1/devices/${encodeURIComponent(id)}/rotate-secret`,
    )
    emit(
      created,
      () =>
        `device ${created.id}: new secret (shown once; the old one is refused from now on)
  secret: ${created.secret}
Restart its agent with --secret=${created.secret}`,
    )
    return 0
  },
})

export const deviceCommands: Command[] = [
  deviceAdd,
  devicesList,
  deviceShow,
  devicesImport,
  deviceDisable,
  deviceEnable,
  deviceRemove,
  deviceRotateSecret,
]
