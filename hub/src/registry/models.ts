// Model registration: validate, store the float model, record the version and
// build it for every profile present in the fleet.
import { EdgeFleetError, isValidId, isValidVersion, sha256Hex } from '@edgefleet/shared'
import { inspectModel } from '../compiler/index.js'
import type { HubStore, BuildRow, VersionRow } from '../store/index.js'
import type { BlobStore } from '../store/blobs.js'
import type { Builder, VersionOptions } from '../build/builder.js'

export interface AddModelInput {
  name: string
  version: string
  bytes: Uint8Array
  options?: VersionOptions
  parent?: string
  runId?: string
}

export class Registry {
  constructor(
    private readonly store: HubStore,
    private readonly blobs: BlobStore,
    private readonly builder: Builder,
    private readonly now: () => number,
  ) {}

  async add(input: AddModelInput): Promise<{ version: VersionRow; builds: BuildRow[] }> {
    if (!isValidId(input.name)) throw new EdgeFleetError('EF_ERR_NAME_INVALID', input.name)
    if (!isValidVersion(input.version)) throw new EdgeFleetError('EF_ERR_VERSION_INVALID', input.version)
    if (this.store.registry.getVersion(input.name, input.version)) throw new EdgeFleetError('EF_ERR_VERSION_EXISTS', `${input.name}@${input.version}`)
    if (input.bytes.byteLength === 0) throw new EdgeFleetError('EF_ERR_MODEL_INVALID', 'empty file')
    const sig = await inspectModel(input.bytes)
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
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new EdgeFleetError('EF_ERR_VERSION_EXISTS', `${input.name}@${input.version}`)
      throw err
    }
    const builds: BuildRow[] = []
    for (const profile of this.store.devices.profilesInFleet()) builds.push(await this.builder.ensure(row, profile))
    return { version: row, builds }
  }

  version(name: string, version: string): VersionRow {
    const v = this.store.registry.getVersion(name, version)
    if (!v) throw new EdgeFleetError('EF_ERR_MODEL_NOT_FOUND', `${name}@${version}`)
    return v
  }
}
