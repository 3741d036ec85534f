// Model registration: validate, store the float model, record the version and
// build it for every profile present in the fleet. Intake of a retrained
// version keeps its lineage (parent, run id) and may start a canary rollout
// with the default gates once every build succeeded [EF-9.11].
import { EdgeFleetError, defined, isValidId, isValidVersion, sha256Hex } from '@edgefleet/shared'
import { inspectModel } from '../compiler/index.js'
import { isDuplicateKey, type HubStore, type BuildRow, type VersionRow, type RolloutRow } from '../store/index.js'
import type { BlobStore } from '../store/blobs.js'
import type { Builder, VersionOptions } from '../build/builder.js'
import type { RolloutEngine } from '../rollouts/engine.js'
import type { RolloutInput } from '../rollouts/spec.js'
import { recordBuildBaseline } from '../telemetry/baselines.js'
import { checkModelMeta } from './meta.js'

/** What happens after intake [EF-9.11]: nothing more, or a canary rollout of the new version. */
export type IntakePolicy = { kind: 'none' } | { kind: 'canary'; rollout?: Partial<RolloutInput>; actor?: string | null }

export interface IntakeResult {
  /** null without a canary policy. */
  rollout: RolloutRow | null
  /** Why no rollout was started under a canary policy. */
  skipped: string | null
}

/** Splits and checks `MODEL@VERSION` of a registered version [EF-9.11]. */
function parseParent(store: HubStore, parent: string): { model: string; version: string } {
  const at = parent.lastIndexOf('@')
  const model = parent.slice(0, at)
  const version = parent.slice(at + 1)
  if (at <= 0 || !isValidId(model) || !isValidVersion(version))
    throw new EdgeFleetError('EF_ERR_PARENT_INVALID', `${JSON.stringify(parent)} is not MODEL@VERSION`)
  if (!store.registry.getVersion(model, version))
    throw new EdgeFleetError('EF_ERR_PARENT_INVALID', `${parent} is not registered`)
  return { model, version }
}

export interface AddModelInput {
  name: string
  version: string
  bytes: Uint8Array
  options?: VersionOptions
  parent?: string
  runId?: string
  /** After the builds: start a canary rollout [EF-9.11]. */
  policy?: IntakePolicy
}

export class Registry {
  /** The rollout engine, for the canary intake policy; set once the hub created it. */
  rollouts?: RolloutEngine

  constructor(
    private readonly store: HubStore,
    private readonly blobs: BlobStore,
    private readonly builder: Builder,
    private readonly now: () => number,
  ) {}

  async add(input: AddModelInput): Promise<{ version: VersionRow; builds: BuildRow[]; intake: IntakeResult }> {
    if (!isValidId(input.name)) throw new EdgeFleetError('EF_ERR_NAME_INVALID', input.name)
    if (!isValidVersion(input.version)) throw new EdgeFleetError('EF_ERR_VERSION_INVALID', input.version)
    if (input.parent !== undefined) parseParent(this.store, input.parent)
    if (input.policy?.kind === 'canary' && !this.rollouts)
      throw new EdgeFleetError('EF_ERR_INTERNAL', 'the canary intake policy needs the rollout engine')
    if (this.store.registry.getVersion(input.name, input.version))
      throw new EdgeFleetError('EF_ERR_VERSION_EXISTS', `${input.name}@${input.version}`)
    if (input.bytes.byteLength === 0) throw new EdgeFleetError('EF_ERR_MODEL_INVALID', 'empty file')
    const sig = await inspectModel(input.bytes)
    // A meta file that does not fit the model is refused before anything is stored [EF-3.7].
    if (input.options?.meta) checkModelMeta(input.options.meta, sig)
    const digest = this.blobs.put(input.bytes)
    const row: VersionRow = {
      model: input.name,
      version: input.version,
      digest,
      size: input.bytes.byteLength,
      inputs: sig.inputs,
      outputs: sig.outputs,
      options: { ...(input.options ?? {}) },
      parent: input.parent ?? null,
      runId: input.runId ?? null,
      createdAt: this.now(),
    }
    if (digest !== sha256Hex(input.bytes)) throw new EdgeFleetError('EF_ERR_INTERNAL', 'blob digest mismatch')
    try {
      this.store.registry.insertVersion(row)
    } catch (err) {
      // Two concurrent registrations of the same version: the loser gets a clear conflict.
      if (isDuplicateKey(err)) throw new EdgeFleetError('EF_ERR_VERSION_EXISTS', `${input.name}@${input.version}`)
      throw err
    }
    const builds: BuildRow[] = []
    for (const profile of this.store.devices.profilesInFleet()) builds.push(await this.builder.ensure(row, profile))
    const ok = builds.find((b) => b.status === 'ok' && b.manifest)
    if (ok?.manifest) recordBuildBaseline(this.store, ok.manifest, this.now())
    return { version: row, builds, intake: this.intake(row, builds, input.policy) }
  }

  /**
   * The canary policy [EF-9.11]: every profile in the fleet built, then a
   * rollout to the devices that serve the model (its default waves and gates
   * unless the policy says otherwise).
   */
  private intake(version: VersionRow, builds: BuildRow[], policy: IntakePolicy | undefined): IntakeResult {
    if (!policy || policy.kind === 'none') return { rollout: null, skipped: null }
    const failed = builds.filter((b) => b.status !== 'ok')
    if (builds.length === 0) return { rollout: null, skipped: 'no device is provisioned, so nothing was built' }
    if (failed.length)
      return {
        rollout: null,
        skipped: `build failed for ${failed.map((b) => `${b.profile} (${b.errorCode})`).join(', ')}`,
      }
    const serving = this.store.devices
      .list(1_000_000, 0)
      .filter((d) => d.state?.models?.some((m) => m.name === version.model))
      .map((d) => d.id)
    const selector = policy.rollout?.selector ?? (serving.length ? { devices: serving } : null)
    if (!selector) return { rollout: null, skipped: `no device serves ${version.model} yet; start a rollout by hand` }
    const engine = defined(this.rollouts, 'rollout engine (the canary policy starts a rollout)')
    const rollout = engine.create(
      { ...policy.rollout, selector, model: version.model, version: version.version },
      policy.actor ?? 'intake',
    )
    return { rollout, skipped: null }
  }

  version(name: string, version: string): VersionRow {
    const v = this.store.registry.getVersion(name, version)
    if (!v) throw new EdgeFleetError('EF_ERR_MODEL_NOT_FOUND', `${name}@${version}`)
    return v
  }
}
