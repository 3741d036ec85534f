// Baselines per model version [EF-9.4]: from the build's health-check
// vectors (usually synthetic), from the version's first hours in the field,
// or posted by a training pipeline. Drift is measured against them.
import {
  CONFIDENCE_BUCKETS,
  EdgeFleetError,
  FEATURE_BUCKETS,
  emptyConfidenceCounts,
  type Manifest,
} from '@edgefleet/shared'
import type { HubStore, Baseline } from '../store/index.js'
import { confidenceBin, confidenceOf, sketchTensors } from './sketch.js'

export interface FieldBaselineOptions {
  /** Length of the version's first window in the field (ms). */
  fieldWindowMs: number
  /** Requests the window needs (over all profiles) before it is frozen. */
  minRequests: number
}

export const defaultFieldBaselineOptions: FieldBaselineOptions = {
  fieldWindowMs: 60 * 60_000, // 1 hour
  minRequests: 200,
}

/** A baseline from a build's health-check inputs and reference outputs [EF-9.4]. */
function buildBaseline(manifest: Manifest, now: number): Baseline {
  const features = sketchTensors(manifest.healthCheck.inputs)
  const c = confidenceOf(manifest.semantics, manifest.healthCheck.outputs)
  let confidence: number[] | null = null
  if (c !== undefined) {
    confidence = emptyConfidenceCounts()
    confidence[confidenceBin(c)]++
  }
  return {
    model: manifest.model,
    version: manifest.version,
    profile: '*',
    source: 'build',
    fromMs: null,
    toMs: null,
    requests: 1,
    confidence,
    features,
    createdAt: now,
  }
}

/** Records the build baseline of a version once (from its first successful build). */
export function recordBuildBaseline(store: HubStore, manifest: Manifest, now: number): void {
  if (store.telemetry.baselines.has(manifest.model, manifest.version, 'build')) return
  store.telemetry.baselines.put(buildBaseline(manifest, now))
}

/**
 * Freezes the field baseline of a version once its first window has passed
 * with enough requests: one per profile seen (when that profile alone has
 * enough) and one for `*` [EF-9.4]. Returns whether it was frozen now.
 */
export function maybeFreezeFieldBaseline(
  store: HubStore,
  model: string,
  version: string,
  now: number,
  options: FieldBaselineOptions,
): boolean {
  const telemetry = store.telemetry
  if (telemetry.baselines.has(model, version, 'field')) return false
  const first = telemetry.rollups.firstSeen(model, version)
  if (first === null || now < first + options.fieldWindowMs) return false
  const window = telemetry.rollups.window(model, version, first, first + options.fieldWindowMs)
  const all = [...window.values()]
  const star = all.find((w) => w.profile === '*')
  if (!star || star.requests < options.minRequests) return false
  for (const fieldWindow of all) {
    if (fieldWindow.profile !== '*' && fieldWindow.requests < options.minRequests) continue
    telemetry.baselines.put({
      model,
      version,
      profile: fieldWindow.profile,
      source: 'field',
      fromMs: first,
      toMs: first + options.fieldWindowMs,
      requests: fieldWindow.requests,
      confidence: fieldWindow.confidence,
      features: fieldWindow.features,
      createdAt: now,
    })
  }
  return true
}

/** Checks a posted baseline against the version's inputs and the protocol's bins [EF-9.4]. */
export function checkPostedBaseline(
  inputs: { name: string }[],
  baseline: { confidence?: number[] | null; features?: Record<string, number[]> },
): void {
  const names = new Set(inputs.map((i) => i.name))
  for (const [name, sketch] of Object.entries(baseline.features ?? {})) {
    if (!names.has(name))
      throw new EdgeFleetError(
        'EF_ERR_BASELINE_INVALID',
        `unknown input ${JSON.stringify(name)}; the model's inputs are ${[...names].map((n) => JSON.stringify(n)).join(', ')}`,
      )
    if (sketch.length !== FEATURE_BUCKETS.length + 1)
      throw new EdgeFleetError(
        'EF_ERR_BASELINE_INVALID',
        `features.${name}: ${sketch.length} bins, expected ${FEATURE_BUCKETS.length + 1} (FEATURE_BUCKETS + overflow)`,
      )
  }
  if (baseline.confidence && baseline.confidence.length !== CONFIDENCE_BUCKETS.length)
    throw new EdgeFleetError(
      'EF_ERR_BASELINE_INVALID',
      `confidence: ${baseline.confidence.length} bins, expected ${CONFIDENCE_BUCKETS.length}`,
    )
  if (!baseline.confidence && Object.keys(baseline.features ?? {}).length === 0)
    throw new EdgeFleetError('EF_ERR_BASELINE_INVALID', 'give confidence bins, feature sketches, or both')
}
