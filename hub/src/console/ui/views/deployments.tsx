// Deployments [EF-8.14]: start one (a version to a target; held for each
// device's maintenance window and conditions unless "deploy now" [EF-8.16]),
// and follow each per device. Progress counts outcomes, not messages sent:
// activated devices fill the bar green, refused or failed ones red (a
// rejected deployment is never a full green bar), a held device says what it
// waits for (its window, with when it opens, or its conditions), and a device
// that is not connected waits as "pending (offline)" rather than looking
// "sent" forever. Sizes are the bytes each device actually downloaded (a
// delta or a resumed transfer moves less than the build's size, shown beside
// it).
import { useState } from 'preact/hooks'
import { api, canOperate } from '../api'
import { Bar, Progress } from '../charts'
import { config } from '../config'
import { pairs, size, sum, when } from '../format'
import { useLoad } from '../hooks'
import type { Deployment, DeploymentDevice, ModelList } from '../types'
import { Load, StatePill, checked, field, onSubmit } from './common'

/** Deployments shown with their devices (one request each). */
const DETAILED = 10

interface Shown {
  deployment: Deployment
  devices: DeploymentDevice[]
}

const isDone = (state: string) => config.deployDone.includes(state)
const isFailed = (state: string) => config.deployFailed.includes(state)

/** Assignment states of a device held by the hub for its window or conditions [EF-8.16]. */
const HELD = ['waiting_window', 'waiting_conditions']
const isHeld = (state: string) => HELD.includes(state)

/**
 * What a device's row says: a held device what it waits for, connected or not (the hub holds it, not
 * the network); a waiting device that is not connected is pending, whatever was sent.
 */
function deviceStateText(d: DeploymentDevice): string {
  if (d.state === 'waiting_window')
    return `waiting_window (${d.windowOpensAt ? `opens ${when(d.windowOpensAt)}` : 'no window within 8 days'})`
  if (isHeld(d.state)) return d.state
  return !isDone(d.state) && !d.online ? 'pending (offline)' : d.state
}

export function DeploymentsView() {
  const data = useLoad(async () => {
    const [list, models] = await Promise.all([
      api<{ items: Deployment[] }>('GET', '/api/v1/deployments?limit=30'),
      api<ModelList>('GET', '/api/v1/models'),
    ])
    const shown = await Promise.all(
      list.items.slice(0, DETAILED).map((d) => api<Shown>('GET', `/api/v1/deployments/${encodeURIComponent(d.id)}`)),
    )
    return { list, shown, models }
  }, [])
  return (
    <Load data={data}>
      {(d) => (
        <>
          {canOperate() ? <DeployForm models={d.models} onDone={data.reload} /> : null}
          <h2>Deployments</h2>
          <DeploymentTable list={d.list.items} shown={d.shown} />
          {d.shown.map((s) => (
            <DeviceTable key={s.deployment.id} shown={s} />
          ))}
        </>
      )}
    </Load>
  )
}

function DeployForm(props: { models: ModelList; onDone: () => void }) {
  const [error, setError] = useState('')
  const refs = props.models.items.flatMap((m) => m.versions.map((v) => `${m.name}@${v}`)).reverse()
  const submit = onSubmit((form) => {
    const ref = field(form, 'ref')
    const at = ref.lastIndexOf('@')
    const body = {
      model: ref.slice(0, at),
      version: ref.slice(at + 1),
      target: field(form, 'target'),
      ...(checked(form, 'rollback') ? { rollback: true } : {}),
      ...(checked(form, 'now') ? { now: true } : {}),
    }
    api('POST', '/api/v1/deployments', body).then(
      () => {
        setError('')
        // "Now" is a choice per deploy: the next one honours windows again unless ticked again.
        const now = form.elements.namedItem('now') as HTMLInputElement | null
        if (now) now.checked = false
        props.onDone()
      },
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    )
  })
  return (
    <>
      <h2>Deploy</h2>
      <form class="inline card" id="deploy" onSubmit={submit}>
        <label>
          version
          <select name="ref">
            {refs.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          target
          <input name="target" size={24} placeholder="profile=P | tag=k=v | device=ID" required />
        </label>
        <label>
          <span>
            <input type="checkbox" name="rollback" /> allow an older version (rollback)
          </span>
        </label>
        <label title="Otherwise each device gets it only inside its profile's maintenance window and conditions">
          <span>
            <input type="checkbox" name="now" /> deploy now (ignore maintenance windows and conditions)
          </span>
        </label>
        <button class="primary" id="deploy-btn">
          Deploy
        </button>
        <span id="deploy-error" class="bad">
          {error}
        </span>
      </form>
    </>
  )
}

function DeploymentTable(props: { list: Deployment[]; shown: Shown[] }) {
  const moved = new Map(props.shown.map((s) => [s.deployment.id, sum(s.devices.map((x) => x.bytes))]))
  return (
    <table id="deployments">
      <thead>
        <tr>
          <th>created</th>
          <th>version</th>
          <th>target</th>
          <th>outcome</th>
          <th>bytes moved</th>
          <th>states</th>
        </tr>
      </thead>
      <tbody>
        {props.list.map((deployment) => {
          const count = (test: (state: string) => boolean) =>
            sum(
              Object.entries(deployment.counts)
                .filter(([state]) => test(state))
                .map(([, n]) => n),
            )
          const failed = count(isFailed)
          const held = count(isHeld)
          return (
            <tr key={deployment.id} data-deployment={deployment.id} class={failed ? 'failed' : ''}>
              <td>{when(deployment.createdAt)}</td>
              <td>
                {deployment.model}@{deployment.version}
                {deployment.rollback ? ' (rollback)' : ''}
              </td>
              <td>{deployment.target}</td>
              <td>
                <Progress done={count((s) => isDone(s) && !isFailed(s))} failed={failed} total={count(() => true)} />
                {held ? <span class="held"> · {held} held</span> : null}
              </td>
              <td>{moved.has(deployment.id) ? size(moved.get(deployment.id) ?? 0) : '–'}</td>
              <td>{pairs(deployment.counts)}</td>
            </tr>
          )
        })}
      </tbody>
    </table>
  )
}

function DeviceTable({ shown }: { shown: Shown }) {
  const d = shown.deployment
  return (
    <>
      <h2>
        {d.model}@{d.version} → {d.target}
        {d.done ? '' : ' (in progress)'}
      </h2>
      <table class="deployment-devices" data-deployment={d.id}>
        <thead>
          <tr>
            <th>device</th>
            <th>state</th>
            <th>downloaded / build size</th>
            <th>code</th>
            <th>message</th>
          </tr>
        </thead>
        <tbody>
          {shown.devices.map((device) => (
            <tr key={device.deviceId} data-device={device.deviceId} class={isFailed(device.state) ? 'failed' : ''}>
              <td>{device.deviceId}</td>
              <td>
                <StatePill state={device.state} label={deviceStateText(device)} />
              </td>
              <td>
                {device.totalBytes ? (
                  <>
                    <Bar fraction={device.bytes / device.totalBytes} failed={isFailed(device.state)} />{' '}
                    {size(device.bytes)} / {size(device.totalBytes)}
                  </>
                ) : (
                  '–'
                )}
              </td>
              <td class="bad">{device.code ?? ''}</td>
              <td>{device.message ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  )
}
