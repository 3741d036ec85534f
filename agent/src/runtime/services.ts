// What runs beside serving: per-request telemetry (confidence, input
// statistics), shadow runs, capture, device conditions, and the runtime
// commands that steer them [EF-2.3.4-7]. agent.ts composes this with the
// updater and the connection.
import { join } from 'node:path'
import type { CapturePolicyCmd, Cmd, ConditionsCmd } from '@edgefleet/shared'
import { confidenceOf } from './outputs.js'
import type { Aggregator } from '../telemetry/aggregator.js'
import { ShadowRunner } from '../shadow/runner.js'
import { ShadowManager } from '../shadow/manager.js'
import { Capture } from '../capture/capture.js'
import { DeviceConditions, type ConditionOverrides } from '../conditions/conditions.js'
import { modelSourceOf, type EventReport, type ModelSourceDeps } from '../updater/model-source.js'

/** Commands the runtime services handle (deploy and rollback go to the updater, hub-key to the trust chain). */
type RuntimeCmd = Exclude<Cmd, { type: 'deploy' | 'rollback' | 'hub-key' | 'agent-update' }>

export interface RuntimeServicesDeps extends ModelSourceDeps {
  deviceId: string
  dataDir: string
  agg: Aggregator
  conditions: ConditionOverrides
  now: () => number
  /** Queues a captured sample; false when the queue refused it. */
  enqueueSample: (payload: Buffer) => boolean
  queuedSampleBytes: () => number
  shadowWorkerUrl?: URL
  random?: () => number
}

/** Capture, and the shadow runner and manager that feed it disagreements. */
function createShadowParts(deps: RuntimeServicesDeps) {
  const capture = new Capture({
    deviceId: deps.deviceId,
    now: deps.now,
    enqueue: deps.enqueueSample,
    queuedBytes: deps.queuedSampleBytes,
    file: join(deps.dataDir, 'capture-policy.json'),
    random: deps.random,
  })
  const runner = new ShadowRunner({
    agg: deps.agg,
    random: deps.random,
    workerUrl: deps.shadowWorkerUrl,
    // Candidates run on the live model's runtime: a wasm device has no native one [EF-5.6].
    backend: deps.host.backend,
    onCompared: (rec, cand, outputs, cmp) => {
      if (!cmp.agree && rec.outputs)
        capture.onDisagreement(rec, cand.manifest.version, outputs, confidenceOf(rec.model.manifest, rec.outputs))
    },
  })
  const shadow = new ShadowManager({ ...modelSourceOf(deps), dir: join(deps.dataDir, 'shadow'), runner })
  return { capture, runner, shadow }
}

/** The runtime commands: shadow lifecycle, capture policies, condition overrides [EF-2.3.4-7]. */
function runtimeCommands(
  deps: RuntimeServicesDeps,
  parts: ReturnType<typeof createShadowParts>,
  conditions: DeviceConditions,
) {
  const { capture, shadow } = parts
  const ack = (cmd: CapturePolicyCmd | ConditionsCmd, message: string): EventReport => {
    const ev: EventReport = { cmdId: cmd.id, kind: 'received', message }
    deps.report(ev)
    return ev
  }
  return async function handle(cmd: RuntimeCmd): Promise<EventReport> {
    switch (cmd.type) {
      case 'shadow':
        return shadow.shadow(cmd)
      case 'promote':
        return shadow.promote(cmd)
      case 'discard':
        return shadow.discard(cmd)
      case 'capture-policy':
        capture.setPolicies(cmd.policies)
        return ack(
          cmd,
          `capture policy applied (${cmd.policies.length} ${cmd.policies.length === 1 ? 'policy' : 'policies'})`,
        )
      case 'conditions': {
        const { network, power, idle } = cmd
        if (conditions.apply({ network, power, idle })) deps.onChange()
        return ack(cmd, `conditions applied: ${JSON.stringify(conditions.current())}`)
      }
    }
  }
}

export function createRuntimeServices(deps: RuntimeServicesDeps) {
  const parts = createShadowParts(deps)
  const { capture, runner, shadow } = parts
  const conditions = new DeviceConditions(deps.conditions)

  // One observer for the serving path: record, decide, schedule; nothing heavy inline [EF-7.2].
  deps.host.onResult((rec) => {
    const confidence = rec.outputs ? confidenceOf(rec.model.manifest, rec.outputs) : undefined
    deps.agg.observe(rec.model.name, rec.model.version, rec.inputs, confidence)
    if (rec.outputs) {
      runner.observe(rec)
      capture.observe(rec, confidence)
    }
  })

  return {
    capture,
    runner,
    shadow,
    conditions,
    handle: runtimeCommands(deps, parts, conditions),
    restore: () => shadow.restore(),
    close: () => runner.close(),
  }
}
export type RuntimeServices = ReturnType<typeof createRuntimeServices>
