// Fleet capture policies [EF-8.15]: list with the devices each matches,
// create (selector, model, rate, byte caps, the privacy filter the device
// runs before anything is stored or sent [EF-2.9.5]) and delete.
import { useState } from 'preact/hooks'
import { api, canOperate, enc } from '../api'
import { fmt } from '../format'
import { useLoad } from '../hooks'
import type { ModelList } from '../types'
import { Load, checked, field, onSubmit } from './common'

interface BlankRegion {
  input: string
  layout: string
  x: number
  y: number
  width: number
  height: number
}
interface Privacy {
  dropInputs?: string[]
  hashInputs?: string[]
  dropOutputs?: string[]
  blankRegions?: BlankRegion[]
  allowAudio?: boolean
}
interface Policy {
  id: string
  name: string
  selectorText: string
  model: string | null
  random: number
  confidenceBelow: number | null
  maxBytesPerHour: number
  maxBytesOnDisk: number
  privacy: Privacy | null
  matched: number
}

const list = (text: string) =>
  text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)

function blankRegion(text: string): BlankRegion {
  const m = /^\s*(.+):(NCHW|NHWC):(\d+),(\d+),(\d+),(\d+)\s*$/.exec(text)
  if (!m) throw new Error('blank region must be INPUT:NCHW|NHWC:X,Y,W,H')
  return { input: m[1], layout: m[2], x: +m[3], y: +m[4], width: +m[5], height: +m[6] }
}

/** The privacy filter from the form; undefined when it sets nothing. Throws on a malformed region. */
function formPrivacy(form: HTMLFormElement): Privacy | undefined {
  const privacy: Privacy = {}
  if (field(form, 'drop')) privacy.dropInputs = list(field(form, 'drop'))
  if (field(form, 'hash')) privacy.hashInputs = list(field(form, 'hash'))
  if (field(form, 'dropOutputs')) privacy.dropOutputs = list(field(form, 'dropOutputs'))
  if (field(form, 'blank')) privacy.blankRegions = field(form, 'blank').split(';').map(blankRegion)
  if (checked(form, 'allowAudio')) privacy.allowAudio = true
  return Object.keys(privacy).length ? privacy : undefined
}

function privacyText(p: Privacy | null): string {
  if (!p) return '–'
  const parts: string[] = []
  if (p.dropInputs) parts.push(`drop ${p.dropInputs.join(',')}`)
  if (p.hashInputs) parts.push(`hash ${p.hashInputs.join(',')}`)
  if (p.dropOutputs) parts.push(`drop outputs ${p.dropOutputs.join(',')}`)
  for (const r of p.blankRegions ?? []) parts.push(`blank ${r.input} ${r.x},${r.y} ${r.width}×${r.height}`)
  parts.push(p.allowAudio ? 'audio allowed' : 'no audio')
  return parts.join('; ')
}

function policyBody(form: HTMLFormElement): Record<string, unknown> {
  const privacy = formPrivacy(form)
  return {
    selector: field(form, 'selector'),
    random: Number(field(form, 'random') || 0),
    maxBytesPerHour: Math.round(Number(field(form, 'mbHour')) * 1e6),
    maxBytesOnDisk: Math.round(Number(field(form, 'mbDisk')) * 1e6),
    ...(field(form, 'name') ? { name: field(form, 'name') } : {}),
    ...(field(form, 'model') ? { model: field(form, 'model') } : {}),
    ...(field(form, 'confidenceBelow') ? { confidenceBelow: Number(field(form, 'confidenceBelow')) } : {}),
    ...(privacy ? { privacy } : {}),
  }
}

export function CaptureView() {
  const data = useLoad(
    () =>
      Promise.all([
        api<{ items: Policy[] }>('GET', '/api/v1/capture-policies'),
        api<ModelList>('GET', '/api/v1/models'),
      ]),
    [],
  )
  const [error, setError] = useState('')
  const create = onSubmit((form) => {
    let body
    try {
      body = policyBody(form)
    } catch (err) {
      setError((err as Error).message)
      return
    }
    api('POST', '/api/v1/capture-policies', body).then(
      () => {
        setError('')
        form.reset()
        data.reload()
      },
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    )
  })
  const remove = (id: string) =>
    void api('DELETE', `/api/v1/capture-policies/${enc(id)}`).then(data.reload, (err: unknown) =>
      setError(err instanceof Error ? err.message : String(err)),
    )
  return (
    <Load data={data}>
      {([policies, models]) => (
        <>
          {canOperate() ? <CreateForm models={models} error={error} onSubmit={create} /> : null}
          <h2>Capture policies</h2>
          <p>Applied to matching devices now and when they join or reconnect; the privacy filter runs on the device.</p>
          <PolicyTable policies={policies.items} onDelete={remove} />
        </>
      )}
    </Load>
  )
}

function CreateForm(props: { models: ModelList; error: string; onSubmit: (event: Event) => void }) {
  const input = (name: string, label: string, extra: Record<string, string | number | boolean> = {}) => (
    <label>
      {label}
      <input name={name} size={10} {...extra} />
    </label>
  )
  return (
    <>
      <h2>New capture policy</h2>
      <form class="inline card" id="capture-create" onSubmit={props.onSubmit}>
        {input('name', 'name', { size: 12 })}
        {input('selector', 'selector', { placeholder: 'tag=site=north', size: 22, required: true })}
        <label>
          model
          <select name="model">
            <option value="">(every model)</option>
            {props.models.items.map((m) => (
              <option key={m.name}>{m.name}</option>
            ))}
          </select>
        </label>
        {input('random', 'random', { defaultValue: '0.05', size: 5 })}
        {input('confidenceBelow', 'confidence below', { size: 5 })}
        {input('mbHour', 'MB/hour', { defaultValue: '10', size: 4 })}
        {input('mbDisk', 'MB on disk', { defaultValue: '50', size: 4 })}
        {input('drop', 'drop inputs')}
        {input('hash', 'hash inputs')}
        {input('dropOutputs', 'drop outputs')}
        {input('blank', 'blank regions', { placeholder: 'image:NCHW:0,0,64,32', size: 20 })}
        <label>
          <span>
            <input type="checkbox" name="allowAudio" /> audio may leave
          </span>
        </label>
        <button class="primary" id="capture-create-btn">
          Create policy
        </button>
        <span id="create-error" class="bad">
          {props.error}
        </span>
      </form>
    </>
  )
}

function PolicyTable(props: { policies: Policy[]; onDelete: (id: string) => void }) {
  return (
    <table id="capture-policies">
      <thead>
        <tr>
          {['policy', 'selector', 'model', 'random', 'conf. below', 'caps (hour / disk)', 'privacy', 'devices', ''].map(
            (h) => (
              <th key={h}>{h}</th>
            ),
          )}
        </tr>
      </thead>
      <tbody>
        {props.policies.map((policy) => (
          <tr key={policy.id} data-policy={policy.id}>
            <td>
              {policy.name}
              <br />
              <small>{policy.id}</small>
            </td>
            <td>{policy.selectorText}</td>
            <td>{policy.model ?? '(all)'}</td>
            <td>{fmt(policy.random)}</td>
            <td>{fmt(policy.confidenceBelow)}</td>
            <td>
              {fmt(policy.maxBytesPerHour / 1e6, 1)} MB / {fmt(policy.maxBytesOnDisk / 1e6, 1)} MB
            </td>
            <td>{privacyText(policy.privacy)}</td>
            <td>{policy.matched}</td>
            <td>
              {canOperate() ? (
                <button data-delete={policy.id} onClick={() => props.onDelete(policy.id)}>
                  Delete
                </button>
              ) : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
