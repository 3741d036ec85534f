// Rollouts [EF-8]: start one (version, selector, waves, soak, gates, what a
// failed gate does, maintenance windows), list them, and steer one: pause,
// resume, approve the next wave, promote, roll back, abort — with its waves,
// gate values over time against their limits, and the decision log.
import { useState } from 'preact/hooks'
import { api, canOperate, enc } from '../api'
import { LineChart, Progress, type Rule } from '../charts'
import { config } from '../config'
import { pairs, when } from '../format'
import { useAction, useLoad } from '../hooks'
import type { ViewProps } from '../router'
import type { ModelList, Rollout } from '../types'
import { Load, Result, Stat, StatePill, checked, field, onSubmit } from './common'

const FINAL = ['completed', 'aborted', 'rolled_back']
const done = (counts: Record<string, number>) => (counts.activated ?? 0) + (counts.skipped ?? 0)
const failed = (counts: Record<string, number>) => config.deployFailed.reduce((acc, s) => acc + (counts[s] ?? 0), 0)
/** Devices held for their window or conditions [EF-8.4]: waiting, neither done nor failed. */
const held = (counts: Record<string, number>) => (counts.waiting_window ?? 0) + (counts.waiting_conditions ?? 0)
const Held = ({ counts }: { counts: Record<string, number> }) =>
  held(counts) ? <span class="held"> · {held(counts)} held</span> : null

/**
 * A gate field as the API takes it [EF-8.5]: empty → the hub's default, 'off' → null, a number → that
 * number; anything else is sent as typed so the hub refuses it with EF_ERR_GATES_INVALID (never NaN → 0).
 */
function gateValue(text: string): number | string | null | undefined {
  if (text === '') return undefined
  if (text === 'off') return null
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : text
}

function rolloutBody(form: HTMLFormElement): Record<string, unknown> {
  const ref = field(form, 'ref')
  const at = ref.lastIndexOf('@')
  const gates: Record<string, unknown> = {}
  for (const name of ['minRequests', ...config.gates.map((g) => g.name)]) {
    const value = gateValue(field(form, name))
    if (value !== undefined) gates[name] = value
  }
  const waves = field(form, 'waves')
    .split(',')
    .map((w) => w.trim())
    .map((w) => (w.endsWith('%') ? { percent: Number(w.slice(0, -1)) } : { count: Number(w) }))
  return {
    model: ref.slice(0, at),
    version: ref.slice(at + 1),
    selector: field(form, 'selector'),
    waves,
    soakMs: Math.round(Number(field(form, 'soak')) * 1000),
    gates,
    onFail: field(form, 'onFail'),
    schedule: { maintenanceWindows: checked(form, 'windows') },
    ...(checked(form, 'approval') ? { approval: true } : {}),
    ...(checked(form, 'rollback') ? { rollback: true } : {}),
  }
}

export function RolloutsView() {
  const data = useLoad(
    () =>
      Promise.all([
        api<{ items: Rollout[] }>('GET', '/api/v1/rollouts?limit=50'),
        api<ModelList>('GET', '/api/v1/models'),
      ]),
    [],
  )
  return (
    <Load data={data}>
      {([list, models]) => (
        <>
          {canOperate() ? <CreateForm models={models} /> : null}
          <h2>Rollouts</h2>
          <RolloutTable rollouts={list.items} />
        </>
      )}
    </Load>
  )
}

function CreateForm({ models }: { models: ModelList }) {
  const [error, setError] = useState('')
  const refs = models.items.flatMap((m) => m.versions.map((v) => `${m.name}@${v}`)).reverse()
  const submit = onSubmit((form) => {
    api<{ rollout: Rollout }>('POST', '/api/v1/rollouts', rolloutBody(form)).then(
      (made) => (location.hash = `#/rollout/${made.rollout.id}`),
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    )
  })
  const box = (name: string, label: string, on = false) => (
    <label>
      <span>
        <input type="checkbox" name={name} defaultChecked={on} /> {label}
      </span>
    </label>
  )
  return (
    <>
      <h2>New rollout</h2>
      <form class="inline card" id="create" onSubmit={submit}>
        <label>
          version
          <select name="ref">
            {refs.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <label>
          selector
          <input name="selector" placeholder="tag=fleet=demo" size={28} required />
        </label>
        <label>
          waves
          <input name="waves" defaultValue="1,50%,100%" size={14} />
        </label>
        <label>
          soak (s)
          <input name="soak" defaultValue="600" size={5} />
        </label>
        <label>
          min requests
          <input name="minRequests" defaultValue="20" size={5} />
        </label>
        {config.gates.map((g) => (
          <label key={g.name}>
            {g.label}
            <input name={g.name} placeholder={g.placeholder} size={5} />
          </label>
        ))}
        <label>
          on failure
          <select name="onFail">
            <option>pause</option>
            <option>rollback</option>
          </select>
        </label>
        {box('windows', "profiles' maintenance windows and conditions", true)}
        {box('approval', 'approve each wave')}
        {box('rollback', 'older version (rollback)')}
        <button class="primary" id="create-btn">
          Create rollout
        </button>
        <span id="create-error" class="bad">
          {error}
        </span>
      </form>
    </>
  )
}

function RolloutTable({ rollouts }: { rollouts: Rollout[] }) {
  return (
    <table id="rollouts">
      <thead>
        <tr>
          {['rollout', 'version', 'selector', 'state', 'wave', 'progress', 'created'].map((h) => (
            <th key={h}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rollouts.map((rollout) => (
          <tr key={rollout.id} data-rollout={rollout.id}>
            <td>
              <a href={`#/rollout/${rollout.id}`}>{rollout.id.slice(0, 8)}</a>
            </td>
            <td>
              {rollout.model}@{rollout.version}
            </td>
            <td>{rollout.selectorText}</td>
            <td>
              <StatePill state={rollout.state} />
            </td>
            <td>
              {rollout.wave + 1}/{rollout.waves.length} {rollout.phase}
            </td>
            <td>
              <Progress done={done(rollout.totals)} failed={failed(rollout.totals)} total={rollout.devices} />
              <Held counts={rollout.totals} />
            </td>
            <td>{when(rollout.createdAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

interface RolloutData {
  rollout: Rollout
  decisions: { ts: number; wave: number; kind: string; decision: string; actor: string | null; detail: unknown }[]
  gateSamples: { ts: number; values: Record<string, number | null> }[]
}

/** Which steering actions the rollout's state allows. */
function actionsFor(r: Rollout): [string, string, string][] {
  if (!canOperate() || FINAL.includes(r.state)) return []
  const actions: [string, string, string][] = []
  if (['running', 'scheduled', 'awaiting_approval'].includes(r.state)) actions.push(['pause', 'Pause', ''])
  if (r.state === 'paused') actions.push(['resume', 'Resume', 'primary'])
  if (r.state === 'awaiting_approval') actions.push(['approve', 'Approve next wave', 'primary'])
  if (r.state !== 'rolling_back') actions.push(['promote', 'Promote now', ''], ['rollback', 'Roll back', 'danger'])
  actions.push(['abort', 'Abort', 'danger'])
  return actions
}

export function RolloutView(props: ViewProps) {
  const id = props.args[0] ?? ''
  const data = useLoad(() => api<RolloutData>('GET', `/api/v1/rollouts/${enc(id)}`), [id])
  const [outcome, act] = useAction()
  const steer = (action: string) =>
    act(async () => {
      await api('POST', `/api/v1/rollouts/${enc(id)}/${action}`, {})
      data.reload()
      return ''
    })
  return (
    <Load data={data}>
      {(shown) => {
        const rollout = shown.rollout
        return (
          <>
            <h2>Rollout {rollout.id}</h2>
            <div class="cards">
              <Stat label="version">
                {rollout.model}@{rollout.version}
              </Stat>
              <Stat label="state">
                <span id="rollout-state" class={`state ${rollout.state}`}>
                  {rollout.state}
                </span>
              </Stat>
              <Stat label="wave" id="rollout-wave">
                {rollout.wave + 1}/{rollout.waves.length} {rollout.phase}
              </Stat>
              <Stat label="selector">{rollout.selectorText}</Stat>
            </div>
            {rollout.reason ? <p id="rollout-reason">{rollout.reason}</p> : null}
            <p id="actions">
              {actionsFor(rollout).map(([action, label, kind]) => (
                <button key={action} data-action={action} class={kind} onClick={() => steer(action)}>
                  {label}
                </button>
              ))}
            </p>
            <p>
              <Result id="action-error" outcome={outcome} />
            </p>
            <WaveTable rollout={rollout} />
            <GateCharts rollout={rollout} samples={shown.gateSamples} />
            <DecisionTable decisions={shown.decisions} />
          </>
        )
      }}
    </Load>
  )
}

function WaveTable({ rollout }: { rollout: Rollout }) {
  return (
    <table id="waves">
      <thead>
        <tr>
          {['wave', 'target', 'soak', 'progress', 'statuses'].map((h) => (
            <th key={h}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rollout.waves.map((wave) => (
          <tr
            key={wave.index}
            data-wave={wave.index + 1}
            class={wave.index === rollout.wave && !FINAL.includes(rollout.state) ? 'current' : ''}
          >
            <td>{wave.index + 1}</td>
            <td>{wave.percent !== null ? `${wave.percent}%` : `${wave.count} devices`}</td>
            <td>{wave.soakMs / 1000} s</td>
            <td>
              <Progress done={done(wave.counts)} failed={failed(wave.counts)} total={wave.devices} />
              <Held counts={wave.counts} />
            </td>
            <td>{pairs(wave.counts)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function GateCharts(props: { rollout: Rollout; samples: RolloutData['gateSamples'] }) {
  const gates = props.rollout.spec.gates
  const series = (key: string) => props.samples.map((s): [number, number | null] => [s.ts, s.values[key] ?? null])
  const limit = (value: number | null | undefined, label: string): Rule[] =>
    value === null || value === undefined ? [] : [{ y: value, color: '#a33', label }]
  return (
    <>
      <h2>Gate values over time</h2>
      <div class="grid">
        <LineChart
          id="gate-errors"
          title="Error rate (wave vs baseline)"
          digits={3}
          series={[
            { name: 'wave', points: series('errorRate') },
            { name: 'baseline', points: series('baselineErrorRate') },
          ]}
          rules={limit(gates.maxErrorRateDelta, `+${gates.maxErrorRateDelta} over baseline`)}
        />
        <LineChart
          id="gate-p95"
          title="p95 latency ratio"
          series={[{ name: 'wave / baseline', points: series('p95Ratio') }]}
          rules={limit(gates.maxP95Ratio, `max ${gates.maxP95Ratio}`)}
        />
        <LineChart
          id="gate-shadow"
          title="Shadow agreement"
          series={[{ name: 'top-1 agreement', points: series('shadowAgreement') }]}
          rules={limit(gates.minShadowAgreement, `min ${gates.minShadowAgreement}`)}
        />
        <LineChart
          id="gate-psi"
          title="Confidence shift (PSI)"
          series={[{ name: 'PSI vs baseline', points: series('confidencePsi') }]}
          rules={limit(gates.maxConfidencePsi, `max ${gates.maxConfidencePsi}`)}
        />
      </div>
    </>
  )
}

function DecisionTable({ decisions }: { decisions: RolloutData['decisions'] }) {
  return (
    <>
      <h2>Decisions</h2>
      <table id="decisions">
        <thead>
          <tr>
            {['time', 'wave', 'kind', 'decision', 'by', 'numbers'].map((h) => (
              <th key={h}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {decisions
            .slice()
            .reverse()
            .map((d, i) => (
              <tr key={i}>
                <td>{when(d.ts)}</td>
                <td>{d.wave + 1}</td>
                <td>{d.kind}</td>
                <td>{d.decision}</td>
                <td>{d.actor ?? 'hub'}</td>
                <td>
                  <code>{JSON.stringify(d.detail).slice(0, 240)}</code>
                </td>
              </tr>
            ))}
        </tbody>
      </table>
    </>
  )
}
