// Checks a fleet capture policy's privacy filter against itself and against
// the model's registered inputs before it is stored [EF-8.15]. The device
// fails closed on what the hub cannot know (a policy for every model, symbolic
// image sizes), so these checks catch operator mistakes early; they are not
// what keeps data on the device.
import { EdgeFleetError, type CapturePrivacy, type CaptureRegion, type TensorSpec } from '@edgefleet/shared'
import type { HubStore } from '../store/index.js'

const invalid = (why: string) => new EdgeFleetError('EF_ERR_CAPTURE_POLICY_INVALID', why)
const badRegion = (why: string) => new EdgeFleetError('EF_ERR_CAPTURE_REGION_INVALID', why)

/** Output names across every registered version of `model`. */
function modelOutputs(store: HubStore, model: string): Set<string> {
  return new Set(store.registry.listVersions(model).flatMap((v) => v.outputs.map((o) => o.name)))
}

/** Input specs by name across every registered version of `model` (a later version's spec wins). */
function modelInputs(store: HubStore, model: string): Map<string, TensorSpec[]> {
  const versions = store.registry.listVersions(model)
  if (versions.length === 0) throw new EdgeFleetError('EF_ERR_MODEL_NOT_FOUND', model)
  const byName = new Map<string, TensorSpec[]>()
  for (const v of versions) for (const spec of v.inputs) byName.set(spec.name, [...(byName.get(spec.name) ?? []), spec])
  return byName
}

/** A region must fit every registered version's image: 4-d, and inside fixed height and width. */
function checkRegion(region: CaptureRegion, specs: TensorSpec[] | undefined): void {
  for (const spec of specs ?? []) {
    if (spec.dims.length !== 4)
      throw badRegion(`input ${JSON.stringify(region.input)} has ${spec.dims.length} dims; a region needs a 4-d image`)
    const [hAxis, wAxis] = region.layout === 'NCHW' ? [2, 3] : [1, 2]
    const height = spec.dims[hAxis]
    const width = spec.dims[wAxis]
    if (typeof width === 'number' && width > 0 && region.x + region.width > width)
      throw badRegion(
        `x ${region.x} + width ${region.width} is past the image width ${width} of ${JSON.stringify(region.input)}`,
      )
    if (typeof height === 'number' && height > 0 && region.y + region.height > height)
      throw badRegion(
        `y ${region.y} + height ${region.height} is past the image height ${height} of ${JSON.stringify(region.input)}`,
      )
  }
}

/** Throws EF_ERR_MODEL_NOT_FOUND, EF_ERR_CAPTURE_POLICY_INVALID or EF_ERR_CAPTURE_REGION_INVALID. */
export function validateCapturePolicy(store: HubStore, model: string | null, privacy?: CapturePrivacy): void {
  const inputs = model === null ? undefined : modelInputs(store, model)
  if (!privacy) return
  const dropped = new Set(privacy.dropInputs ?? [])
  const both = (privacy.hashInputs ?? []).filter((n) => dropped.has(n))
  if (both.length) throw invalid(`input ${JSON.stringify(both[0])} is both dropped and hashed`)
  const named = [
    ...(privacy.dropInputs ?? []),
    ...(privacy.hashInputs ?? []),
    ...(privacy.audioInputs ?? []),
    ...(privacy.blankRegions ?? []).map((r) => r.input),
  ]
  const unknown = inputs ? named.find((n) => !inputs.has(n)) : undefined
  if (unknown !== undefined)
    throw invalid(
      `model ${model} has no input ${JSON.stringify(unknown)} (inputs: ${[...(inputs?.keys() ?? [])].join(', ')})`,
    )
  const outputs = model === null ? undefined : modelOutputs(store, model)
  const unknownOutput = outputs ? privacy.dropOutputs?.find((n) => !outputs.has(n)) : undefined
  if (unknownOutput !== undefined) throw invalid(`model ${model} has no output ${JSON.stringify(unknownOutput)}`)
  for (const r of privacy.blankRegions ?? []) {
    if (dropped.has(r.input) || privacy.hashInputs?.includes(r.input))
      throw invalid(`input ${JSON.stringify(r.input)} is blanked and also dropped or hashed`)
    checkRegion(r, inputs?.get(r.input))
  }
}
