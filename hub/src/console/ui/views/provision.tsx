// Provisioning [EF-1.3.3]: register a device under a profile with its tags,
// and get the command line that starts its agent (secret and hub key shown
// once, as `edgefleet device add` prints them). With a TLS hub the form can
// also issue the device a client certificate [EF-10.3].
import { useState } from 'preact/hooks'
import { api, session } from '../api'
import { useLoad } from '../hooks'
import type { Provisioned } from '../types'
import { Load, checked, field, onSubmit } from './common'

/** `k=v, k2=v2` → tags; a pair without '=' is refused before anything is sent. */
function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {}
  for (const pair of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = pair.indexOf('=')
    if (eq < 1) throw new Error(`tag "${pair}" must be key=value`)
    tags[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim()
  }
  return tags
}

/** The agent's command line, as the CLI prints it (`--opt=value`: a base64url secret may start with '-'). */
function agentCommand(p: Provisioned): string {
  const tls = [
    ...(p.tls?.caFile ? [`--ca ${p.tls.caFile}`] : []),
    ...(p.tls?.cert ? [`--cert ${p.id}-cert.pem --key ${p.id}-key.pem`] : []),
  ]
  return [
    `edgefleet-agent --hub ${p.mqttUrl} --device-id ${p.id} --secret=${p.secret}`,
    `--hub-key=${p.hubPublicKey} --profile ${p.profile}`,
    ...tls,
  ].join(' ')
}

export function ProvisionView() {
  const profiles = useLoad(() => api<{ items: { id: string; name: string }[] }>('GET', '/api/v1/profiles'), [])
  const [error, setError] = useState('')
  const [made, setMade] = useState<Provisioned | undefined>(undefined)
  const submit = onSubmit((form) => {
    setError('')
    let body
    try {
      body = {
        id: field(form, 'id'),
        profile: field(form, 'profile'),
        tags: parseTags(field(form, 'tags')),
        ...(checked(form, 'cert') ? { cert: true } : {}),
      }
    } catch (err) {
      setError((err as Error).message)
      return
    }
    api<Provisioned>('POST', '/api/v1/devices', body).then(
      (device) => {
        setMade(device)
        form.reset()
      },
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    )
  })
  // POST /api/v1/devices is for admins: it hands out a device secret.
  if (session.role !== 'admin') return <p>Provisioning needs an admin token.</p>
  return (
    <>
      <h2>Provision a device</h2>
      <Load data={profiles}>
        {(known) => (
          <form class="inline card" id="provision" onSubmit={submit}>
            <label>
              device id
              <input name="id" size={16} required placeholder="truck-017" />
            </label>
            <label>
              profile
              <select name="profile">
                {known.items.map((profile) => (
                  <option key={profile.id} value={profile.id}>
                    {profile.id} — {profile.name}
                  </option>
                ))}
              </select>
            </label>
            <label>
              tags
              <input name="tags" size={24} placeholder="site=north, ring=canary" />
            </label>
            <label>
              <span>
                <input type="checkbox" name="cert" /> issue a TLS client certificate
              </span>
            </label>
            <button class="primary" id="provision-btn">
              Provision
            </button>
            <span id="provision-error" class="bad">
              {error}
            </span>
          </form>
        )}
      </Load>
      {made ? <Provisioned device={made} /> : null}
    </>
  )
}

function Provisioned({ device }: { device: Provisioned }) {
  return (
    <div class="card" id="provisioned">
      <h3>
        {device.id} ({device.profile}) provisioned
      </h3>
      <p>
        The secret is shown only now. Start the device's agent (installed from an agent package, see the README) with:
      </p>
      <pre id="agent-command">{agentCommand(device)}</pre>
      {device.tls?.cert ? (
        <>
          <p>
            Save the certificate as {device.id}-cert.pem and the key as {device.id}-key.pem on the device:
          </p>
          <pre id="device-cert">{device.tls.cert}</pre>
          <pre id="device-key">{device.tls.key}</pre>
        </>
      ) : null}
      <p>
        It shows up on the <a href={`#/device/${encodeURIComponent(device.id)}`}>device page</a> once its agent
        connects.
      </p>
    </div>
  )
}
