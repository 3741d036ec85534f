// What an operator does to one device from its page: run a candidate version
// in shadow beside the live one [EF-2.7], set the device's own capture policy
// [EF-2.3.6], and roll a model back to an older version (a deployment with
// rollback allowed, which the agent otherwise refuses as a downgrade).
import { api, enc } from '../api'
import { useAction } from '../hooks'
import type { Device, Deployment, ModelList } from '../types'
import { Result, field, onSubmit } from './common'

interface Props {
  device: Device
  models: ModelList
}

/** `name@version` options for every registered version of the models the device runs. */
function versionOptions(props: Props) {
  const running = new Set(props.device.models.map((m) => m.name))
  return props.models.items
    .filter((m) => running.has(m.name))
    .flatMap((m) => m.versions.map((v) => `${m.name}@${v}`))
    .reverse()
}

const split = (ref: string): [string, string] => {
  const at = ref.lastIndexOf('@')
  return [ref.slice(0, at), ref.slice(at + 1)]
}

export function DeviceActions(props: Props) {
  const [shadow, runShadow] = useAction()
  const [capture, runCapture] = useAction()
  const [rollback, runRollback] = useAction()
  const id = props.device.id
  const refs = versionOptions(props)
  const options = refs.map((ref) => <option key={ref}>{ref}</option>)
  const sendShadow = onSubmit((form) =>
    runShadow(async () => {
      const [model, version] = split(field(form, 'ref'))
      const body = { model, version, fraction: Number(field(form, 'fraction')) }
      const sent = await api<{ cmdId: string }>('POST', `/api/v1/devices/${enc(id)}/shadow`, body)
      return `shadow ${model}@${version} sent (command ${sent.cmdId})`
    }),
  )
  const sendCapture = onSubmit((form) =>
    runCapture(async () => {
      const policy = {
        random: Number(field(form, 'random')),
        maxBytesPerHour: Math.round(Number(field(form, 'mbHour')) * 1e6),
        maxBytesOnDisk: Math.round(Number(field(form, 'mbDisk')) * 1e6),
      }
      const sent = await api<{ cmdId: string }>('POST', `/api/v1/devices/${enc(id)}/capture-policy`, {
        policies: policy.random > 0 ? [policy] : [],
      })
      return `capture policy sent (command ${sent.cmdId})`
    }),
  )
  const sendRollback = onSubmit((form) =>
    runRollback(async () => {
      const [model, version] = split(field(form, 'ref'))
      const body = { model, version, target: `device=${id}`, rollback: true }
      const made = await api<{ deployment: Deployment }>('POST', '/api/v1/deployments', body)
      return `rollback to ${model}@${version}: deployment ${made.deployment.id.slice(0, 8)}`
    }),
  )
  return (
    <>
      <h2>Actions</h2>
      <div class="grid actions">
        <form class="inline card" id="shadow-form" onSubmit={sendShadow}>
          <label>
            shadow candidate<select name="ref">{options}</select>
          </label>
          <label>
            share of requests
            <input name="fraction" defaultValue="1" size={4} />
          </label>
          <button class="primary">Start shadow</button>
          <Result id="shadow-result" outcome={shadow} />
        </form>
        <form class="inline card" id="capture-form" onSubmit={sendCapture}>
          <label>
            capture at random
            <input name="random" defaultValue="0.1" size={4} />
          </label>
          <label>
            MB/hour
            <input name="mbHour" defaultValue="5" size={4} />
          </label>
          <label>
            MB on disk
            <input name="mbDisk" defaultValue="20" size={4} />
          </label>
          <button class="primary">Set capture</button>
          <Result id="capture-result" outcome={capture} />
        </form>
        <form class="inline card" id="rollback-form" onSubmit={sendRollback}>
          <label>
            roll back to<select name="ref">{options}</select>
          </label>
          <button class="danger">Roll back</button>
          <Result id="rollback-result" outcome={rollback} />
        </form>
      </div>
    </>
  )
}
