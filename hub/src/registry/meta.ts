// Model metadata at registration [EF-3.7, EF-3.8]: the `--meta` file parsed
// against its schema, then checked against the model it describes, so that a
// label list one class short or a mean for the wrong input is refused before
// anything is registered, never discovered on a device.
import { EdgeFleetError, modelMetaCodec, type ModelMeta, type OutputMeta, type TensorSpec } from '@edgefleet/shared'

const invalid = (detail: string) => new EdgeFleetError('EF_ERR_MODEL_META_INVALID', detail)

/** The meta file's text → a ModelMeta, or EF_ERR_MODEL_META_INVALID saying where it is wrong. */
export function parseModelMeta(text: string): ModelMeta {
  try {
    return modelMetaCodec.decode(text)
  } catch (err) {
    throw invalid((err as Error).message)
  }
}

/** A dim's size when the model fixes it, else undefined (symbolic). */
const fixedDim = (dim: number | string | undefined): number | undefined =>
  typeof dim === 'number' && dim > 0 ? dim : undefined

function checkInput(name: string, meta: NonNullable<ModelMeta['inputs']>[string], spec: TensorSpec): void {
  const where = `inputs.${name}`
  const layout = meta.layout
  if (layout !== undefined) {
    if (layout.length !== spec.dims.length)
      throw invalid(`${where}.layout ${layout} has ${layout.length} axes; the input has ${spec.dims.length}`)
    if (new Set(layout).size !== layout.length) throw invalid(`${where}.layout ${layout} repeats an axis`)
  }
  const norm = meta.normalize
  if (!norm) return
  if (norm.mean.length !== norm.std.length)
    throw invalid(`${where}.normalize: ${norm.mean.length} means but ${norm.std.length} stds`)
  if (norm.mean.length === 1) return
  // Per-channel values need to know which axis is the channel one, and how long it is.
  const channelAxis = layout?.indexOf('C') ?? -1
  if (channelAxis < 0)
    throw invalid(`${where}.normalize has ${norm.mean.length} values per channel: give a layout with a C axis`)
  const channels = fixedDim(spec.dims[channelAxis])
  if (channels !== undefined && channels !== norm.mean.length)
    throw invalid(
      `${where}.normalize has ${norm.mean.length} values; axis C of [${spec.dims.join(',')}] has ${channels}`,
    )
}

function checkOutput(name: string, meta: OutputMeta, spec: TensorSpec): void {
  const where = `outputs.${name}`
  const classes = fixedDim(spec.dims.at(-1))
  if (meta.labels && classes !== undefined && meta.labels.length !== classes)
    throw invalid(
      `${where}.labels has ${meta.labels.length} labels; the last axis of [${spec.dims.join(',')}] has ${classes}`,
    )
  const count = meta.labels?.length ?? classes
  const topK = meta.postprocess?.topK
  if (topK !== undefined && count !== undefined && topK > count)
    throw invalid(`${where}.postprocess.topK ${topK} is more than the ${count} classes`)
  if (meta.postprocess && spec.dims.length === 0) throw invalid(`${where}.postprocess needs an output with an axis`)
}

/** Checks `meta` against the model's declared inputs and outputs; throws EF_ERR_MODEL_META_INVALID. */
export function checkModelMeta(meta: ModelMeta, model: { inputs: TensorSpec[]; outputs: TensorSpec[] }): void {
  const byName = (specs: TensorSpec[]) => new Map(specs.map((s) => [s.name, s]))
  const inputs = byName(model.inputs)
  const outputs = byName(model.outputs)
  const unknown = (kind: string, name: string, known: Map<string, TensorSpec>) =>
    invalid(`${kind}.${name}: the model has no such ${kind.slice(0, -1)} (it has ${[...known.keys()].join(', ')})`)
  for (const [name, inputMeta] of Object.entries(meta.inputs ?? {})) {
    const spec = inputs.get(name)
    if (!spec) throw unknown('inputs', name, inputs)
    checkInput(name, inputMeta, spec)
  }
  for (const [name, outputMeta] of Object.entries(meta.outputs ?? {})) {
    const spec = outputs.get(name)
    if (!spec) throw unknown('outputs', name, outputs)
    checkOutput(name, outputMeta, spec)
  }
}
