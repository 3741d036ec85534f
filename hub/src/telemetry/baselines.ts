// Baselines per model version [EF-9.4]: from the build's health-check
// vectors (usually synthetic, kept for reference but never measured against),
// from the version's first requests or hours in the field, or posted by a
// training pipeline. Drift is measured against the field or posted one; until
// one exists a version has "no baseline yet".
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
  /** Length of the version's first window in the field (ms): frozen then if it holds minRequests. */
  fieldWindowMs: number
  /** Requests the time window needs (over all profiles) before it is frozen. */
  minRequests: number
  /** The version's first this-many requests (over all profiles) become its baseline as soon as they are in. */
  baselineRequests: number
}

export const defaultFieldBaselineOptions: FieldBaselineOptions = {
  fieldWindowMs: 60 * 60_000, // 1 hour
  minRequests: 200,
  baselineRequests: 1000,
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
 * End (exclusive bucket bound) of the rollup bucket in which the version's
 * requests since `first` reached `count`; undefined while they have not.
 */
function countReachedAt(store: HubStore, model: string, version: string, first: number, now: number, count: number) {
  const perBucket = new Map<number, number>()
  for (const row of store.telemetry.rollups.rows(model, version, first, now + 1))
    perBucket.set(row.bucket, (perBucket.get(row.bucket) ?? 0) + row.requests)
  let seen = 0
  for (const [bucket, requests] of [...perBucket].sort((a, b) => a[0] - b[0])) {
    seen += requests
    if (seen >= count) return bucket + 1
  }
  return undefined
}

/**
 * Freezes the field baseline of a version [EF-9.4] over its first
 * `baselineRequests` requests (the rollup buckets that hold them) or its first
 * `fieldWindowMs` when that holds at least `minRequests`, whichever comes
 * first: one per profile seen (when that profile alone has minRequests) and
 * one for `*`. Returns whether it was frozen now.
 */
export function maybeFreezeFieldBaseline(
  store: HubStore,
  model: string,
  version: string,
  now: number,
  options: FieldBaselineOptions,
): boolean {
  if (store.telemetry.baselines.has(model, version, 'field')) return false
  const first = store.telemetry.rollups.firstSeen(model, version)
  if (first === null) return false
  const byTime = now >= first + options.fieldWindowMs ? first + options.fieldWindowMs : undefined
  const byCount = countReachedAt(store, model, version, first, now, options.baselineRequests)
  const ends = [byCount, byTime].filter((end) => end !== undefined).sort((a, b) => a - b)
  for (const end of ends) if (freezeWindow(store, { model, version, first, end, now }, options.minRequests)) return true
  return false
}

/** Stores the field baselines of [first, end) when the window holds `minRequests` over all profiles. */
function freezeWindow(
  store: HubStore,
  span: { model: string; version: string; first: number; end: number; now: number },
  minRequests: number,
): boolean {
  const telemetry = store.telemetry
  const all = [...telemetry.rollups.window(span.model, span.version, span.first, span.end).values()]
  const star = all.find((w) => w.profile === '*')
  if (!star || star.requests < minRequests) return false
  for (const fieldWindow of all) {
    if (fieldWindow.profile !== '*' && fieldWindow.requests < minRequests) continue
    telemetry.baselines.put({
      model: span.model,
      version: span.version,
      profile: fieldWindow.profile,
      source: 'field',
      fromMs: span.first,
      toMs: span.end,
      requests: fieldWindow.requests,
      confidence: fieldWindow.confidence,
      features: fieldWindow.features,
      createdAt: span.now,
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
