// Builds: (model version, profile) → compiled artifact + health-check vectors +
// signed manifest [EF-3]. Builds run one at a time: compiling is CPU-bound and
// the hub shares its cores with the broker.
import type { KeyObject } from 'node:crypto'
import {
  PROTOCOL_VERSION,
  EdgeFleetError,
  chunkArtifact,
  codeOf,
  encodeTensor,
  manifestCodec,
  signDocument,
  type FirmwareProfile,
  type Manifest,
  type ModelMeta,
  type TensorValue,
} from '@edgefleet/shared'
import type { Logger } from 'pino'
import { compileInWorker, referenceOutputs, synthesizeInputs, type NamedTensor } from '../compiler/index.js'
import type { HubStore, BuildRow, VersionRow } from '../store/index.js'
import type { BlobStore } from '../store/blobs.js'
import { tensorAlignedBoundaries } from '../distribution/tensor-chunks.js'

export interface BuilderDeps {
  store: HubStore
  blobs: BlobStore
  profiles: Map<string, FirmwareProfile>
  /** The hub's current signing key, read at each signature (it changes on rotation, EF-3.6). */
  keys: { readonly privateKey: KeyObject }
  log: Logger
  now: () => number
  /** Compile worker script; defaults to worker.js beside the compiler (tests running from source pass the built one). */
  workerUrl?: URL
  /** Told after each build attempt, for the /metrics build-duration histogram [EF-8.12]. */
  onBuilt?: (b: { profile: string; seconds: number; outcome: 'ok' | 'failed' }) => void
}

/** Version options that shape compilation (stored with the version). */
export interface VersionOptions {
  inputShapes?: Record<string, number[]>
  inputValues?: Record<string, number>
  precision?: 'auto' | Manifest['precision']
  /** What each output means (output name → kind), carried into the manifest's `semantics` so agents read confidence [EF-2.6.4]. */
  outputs?: Record<string, OutputKind>
  /** What the tensors mean and what the build requires of the agent (`--meta`) [EF-3.7, EF-3.8]; checked at registration. */
  meta?: ModelMeta
}

type OutputKind = NonNullable<Manifest['semantics']>[number]['kind']

/** Manifest semantics in the model's output order (agents read confidence from the first confident one); unknown names fail the build. */
function semanticsOf(
  outputs: Record<string, OutputKind> | undefined,
  declared: { name: string }[],
): Manifest['semantics'] {
  if (!outputs || Object.keys(outputs).length === 0) return undefined
  const names = new Set(declared.map((o) => o.name))
  const unknown = Object.keys(outputs).filter((n) => !names.has(n))
  if (unknown.length)
    throw new EdgeFleetError(
      'EF_ERR_MODEL_INVALID',
      `options.outputs names ${unknown.map((n) => JSON.stringify(n)).join(', ')}; the model's outputs are ${[...names].map((n) => JSON.stringify(n)).join(', ')}`,
    )
  return declared.filter((o) => outputs[o.name] !== undefined).map((o) => ({ name: o.name, kind: outputs[o.name] }))
}

/** The manifest's `meta` and `requires` from the version's meta file [EF-3.7, EF-3.8]. */
function metaFields(meta: ModelMeta | undefined): Pick<Manifest, 'meta' | 'requires'> {
  if (!meta) return {}
  const { requires, ...tensors } = meta
  return {
    ...(Object.keys(tensors).length ? { meta: tensors } : {}),
    ...(requires && Object.keys(requires).length ? { requires } : {}),
  }
}

/** Tolerances a device must meet when it reproduces the hub's reference outputs. */
const HEALTH_TOLERANCE: Record<Manifest['precision'], { atol: number; rtol: number }> = {
  fp32: { atol: 1e-4, rtol: 1e-3 },
  fp16: { atol: 1e-2, rtol: 1e-2 },
  'int8-dynamic': { atol: 2e-2, rtol: 2e-2 },
  'int8-static': { atol: 2e-2, rtol: 2e-2 },
  'int8-weight': { atol: 1e-2, rtol: 1e-2 },
}

type Compiled = Awaited<ReturnType<typeof compileInWorker>>

const wire = (tensors: Record<string, NamedTensor>): Record<string, TensorValue> =>
  Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, encodeTensor(t.type, t.dims, t.data, true)]))

export class Builder {
  private queue: Promise<unknown> = Promise.resolve()

  constructor(private readonly deps: BuilderDeps) {}

  /** The build of `v` for `profileId`, building it first if there is none yet. */
  ensure(v: VersionRow, profileId: string): Promise<BuildRow> {
    const existing = this.deps.store.registry.getBuild(v.model, v.version, profileId)
    if (existing) return Promise.resolve(existing)
    const job = this.queue.then(
      () => this.deps.store.registry.getBuild(v.model, v.version, profileId) ?? this.timedBuild(v, profileId),
    )
    this.queue = job.catch(() => undefined)
    return job
  }

  private async timedBuild(v: VersionRow, profileId: string): Promise<BuildRow> {
    const started = performance.now()
    const row = await this.build(v, profileId)
    const outcome = row.status === 'ok' ? 'ok' : 'failed'
    this.deps.onBuilt?.({ profile: profileId, seconds: (performance.now() - started) / 1000, outcome })
    return row
  }

  /**
   * The precision of the latest earlier version's successful build for this profile: the
   * planner keeps it when it still passes, so the new version's delta stays small [EF-5.3].
   */
  private previousPrecision(v: VersionRow, profileId: string): Manifest['precision'] | undefined {
    const registry = this.deps.store.registry
    const versions = registry.listVersions(v.model) // oldest first
    const at = versions.findIndex((x) => x.version === v.version)
    const earlier = at > 0 ? versions.slice(0, at) : []
    for (const prev of earlier.reverse()) {
      const b = registry.getBuild(prev.model, prev.version, profileId)
      if (b?.status === 'ok' && b.precision) return b.precision
    }
    return undefined
  }

  private async build(version: VersionRow, profileId: string): Promise<BuildRow> {
    const started = this.deps.now()
    const profile = this.deps.profiles.get(profileId)
    try {
      if (!profile) throw new EdgeFleetError('EF_ERR_PROFILE_UNKNOWN', profileId)
      const compiled = await this.compile(version, profile, profileId)
      const manifest = await this.manifestOf(version, profileId, compiled, started)
      return this.recordBuilt(version, profileId, manifest, started)
    } catch (err) {
      return this.recordFailed(version, profileId, err)
    }
  }

  /** Compiles the version's source for the profile with the version's options. */
  private compile(version: VersionRow, profile: FirmwareProfile, profileId: string): Promise<Compiled> {
    const opts = version.options as VersionOptions
    // In a worker thread: compiling and timing candidates must not stall the broker or the API.
    return compileInWorker(this.deps.blobs.get(version.digest), profile, {
      precision: opts.precision,
      inputShapes: opts.inputShapes,
      inputValues: opts.inputValues,
      previousPrecision: this.previousPrecision(version, profileId),
      workerUrl: this.deps.workerUrl,
    })
  }

  /** The build's manifest, checked: stores the artifact and its chunk list, and runs the health-check vectors. */
  private async manifestOf(
    version: VersionRow,
    profileId: string,
    result: Compiled,
    started: number,
  ): Promise<Manifest> {
    const { store, blobs, now } = this.deps
    const opts = version.options as VersionOptions
    const semantics = semanticsOf(opts.outputs, result.outputs)
    const inputs = synthesizeInputs(result.inputs, { seed: 7, shapes: opts.inputShapes, values: opts.inputValues })
    const outputs = await referenceOutputs(result.bytes, inputs)
    const artifactDigest = blobs.put(result.bytes)
    const chunked = chunkArtifact(result.bytes, tensorAlignedBoundaries(result.bytes))
    store.registry.insertArtifact(artifactDigest, chunked.size, chunked.chunks, now())
    return manifestCodec.check({
      v: PROTOCOL_VERSION,
      model: version.model,
      version: version.version,
      profile: profileId,
      precision: result.precision,
      createdAt: now(),
      artifact: {
        format: 'onnx',
        digest: artifactDigest,
        size: chunked.size,
        chunks: chunked.chunks,
        url: `/api/v1/artifacts/${artifactDigest}`,
      },
      inputs: result.inputs,
      outputs: result.outputs,
      ...(semantics ? { semantics } : {}),
      ...metaFields(opts.meta),
      healthCheck: { inputs: wire(inputs), outputs: wire(outputs), ...HEALTH_TOLERANCE[result.precision] },
      validation: { ...result.report, buildMs: now() - started },
      ...(version.parent ? { parent: version.parent } : {}),
    })
  }

  /** Signs the manifest with the hub's current key [EF-3] and records the build as ok. */
  private recordBuilt(version: VersionRow, profileId: string, manifest: Manifest, started: number): BuildRow {
    const { store, log, now } = this.deps
    const manifestSig = signDocument(manifest, this.deps.keys.privateKey)
    log.info(
      {
        model: version.model,
        version: version.version,
        profile: profileId,
        precision: manifest.precision,
        ms: now() - started,
      },
      'build ok',
    )
    return store.registry.upsertBuild({
      model: version.model,
      version: version.version,
      profile: profileId,
      status: 'ok',
      precision: manifest.precision,
      artifact: manifest.artifact.digest,
      manifest,
      manifestSig,
      report: manifest.validation ?? null,
      errorCode: null,
      error: null,
      createdAt: now(),
    })
  }

  /** Records a failed build with its code; an uncoded failure is EF_ERR_BUILD_FAILED. */
  private recordFailed(version: VersionRow, profileId: string, err: unknown): BuildRow {
    const { store, log, now } = this.deps
    const code = codeOf(err) === 'EF_ERR_INTERNAL' ? 'EF_ERR_BUILD_FAILED' : codeOf(err)
    log.warn(
      { model: version.model, version: version.version, profile: profileId, code, err: (err as Error).message },
      'build failed',
    )
    return store.registry.upsertBuild({
      model: version.model,
      version: version.version,
      profile: profileId,
      status: 'failed',
      precision: null,
      artifact: null,
      manifest: null,
      manifestSig: null,
      report: null,
      errorCode: code,
      error: (err as Error).message,
      createdAt: now(),
    })
  }
}
