// Capture for retraining [EF-2.9]: the hub's policies decide which requests to
// keep (random fraction, low confidence, shadow disagreement); two hard byte
// caps, per clock hour and queued on disk, are checked before a sample is
// queued, so a flood of low-confidence requests can never fill the device.
// Deciding is cheap and runs on the result path; the privacy filter [EF-2.9.5]
// and encoding run in setImmediate, before anything is queued.
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs'
import {
  PROTOCOL_VERSION,
  encodeTensor,
  sampleCodec,
  type CapturePolicy,
  type CaptureReason,
  type Sample,
  type TensorValue,
} from '@edgefleet/shared'
import type { InferRecord } from '../runtime/host.js'
import type { Tensor } from '../runtime/session.js'
import { filterInputs, filterOutputs, keptInputNames } from './privacy.js'

export interface CaptureDeps {
  deviceId: string
  now: () => number
  /** Queues an encoded sample (outbox kind 'sample'); false when the queue refused it. */
  enqueue: (payload: Buffer) => boolean
  /** Bytes of samples waiting in the queue now. */
  queuedBytes: () => number
  /** Where the policies persist across restarts. */
  file?: string
  random?: () => number
}

export interface CaptureStats {
  captured: number
  capturedBytes: number
  /** Skipped by a byte cap (or larger than a sample may be). */
  capped: number
}

const HOUR_MS = 3_600_000

function encodeAll(ts: Record<string, Tensor>): Record<string, TensorValue> {
  const out: Record<string, TensorValue> = {}
  for (const [k, t] of Object.entries(ts)) out[k] = encodeTensor(t.type, t.dims, t.data, true)
  return out
}

/** Raw bytes of a set of tensors: base64 makes 4/3 of it, the floor of a sample's size. */
function rawBytes(ts: Record<string, Tensor>): number {
  let n = 0
  for (const t of Object.values(ts)) n += t.data.byteLength
  return n
}

export class Capture {
  private policies: CapturePolicy[] = []
  private hour = -1
  private hourBytes = 0
  readonly stats: CaptureStats = { captured: 0, capturedBytes: 0, capped: 0 }

  constructor(private readonly d: CaptureDeps) {
    if (d.file && existsSync(d.file)) {
      try {
        this.policies = JSON.parse(readFileSync(d.file, 'utf8')) as CapturePolicy[]
      } catch {
        this.policies = []
      }
    }
  }

  setPolicies(p: CapturePolicy[]): void {
    this.policies = p
    if (this.d.file) {
      writeFileSync(`${this.d.file}.tmp`, JSON.stringify(p))
      renameSync(`${this.d.file}.tmp`, this.d.file)
    }
  }

  getPolicies(): CapturePolicy[] {
    return this.policies
  }

  policyFor(model: string): CapturePolicy | undefined {
    return this.policies.find((p) => p.model === model) ?? this.policies.find((p) => p.model === undefined)
  }

  /** Result observer: random and low-confidence captures. */
  observe(rec: InferRecord, confidence: number | undefined): void {
    if (!rec.outputs || this.policies.length === 0) return
    const p = this.policyFor(rec.model.name)
    if (!p) return
    let reason: CaptureReason | undefined
    if (p.confidenceBelow !== undefined && confidence !== undefined && confidence < p.confidenceBelow)
      reason = 'low_confidence'
    else if (p.random > 0 && (this.d.random ?? Math.random)() < p.random) reason = 'random'
    if (!reason) return
    this.take(p, rec, rec.outputs, reason, confidence)
  }

  /** Shadow observer: the candidate disagreed on top-1. */
  onDisagreement(
    rec: InferRecord,
    candidateVersion: string,
    candidateOutputs: Record<string, Tensor>,
    confidence: number | undefined,
  ): void {
    if (!rec.outputs) return
    const p = this.policyFor(rec.model.name)
    if (!p?.disagreement) return
    this.take(p, rec, rec.outputs, 'disagreement', confidence, { version: candidateVersion, outputs: candidateOutputs })
  }

  /** Cheap cap check first (no encoding when the hour's budget is spent), exact check on the encoded bytes. */
  private take(
    policy: CapturePolicy,
    rec: InferRecord,
    outputs: Record<string, Tensor>,
    reason: CaptureReason,
    confidence: number | undefined,
    shadow?: { version: string; outputs: Record<string, Tensor> },
  ): void {
    const now = this.d.now()
    const hour = Math.floor(now / HOUR_MS)
    if (hour !== this.hour) {
      this.hour = hour
      this.hourBytes = 0
    }
    const kept = keptInputNames(Object.keys(rec.inputs), policy.privacy)
    const keptInputs = Object.fromEntries(kept.map((n) => [n, rec.inputs[n]]))
    const floor = Math.ceil(
      ((rawBytes(keptInputs) + rawBytes(outputs) + (shadow ? rawBytes(shadow.outputs) : 0)) * 4) / 3,
    )
    if (this.hourBytes + floor > policy.maxBytesPerHour || floor > sampleCodec.maxBytes) {
      this.stats.capped++
      return
    }
    // Reserve the floor now so a burst of requests in one tick cannot overshoot the hourly cap.
    this.hourBytes += floor
    const served = rec.model
    setImmediate(() => {
      const sample = this.sampleOf(policy, { rec, served, outputs, reason, confidence, shadow, ts: now })
      this.enqueueWithinCaps(policy, sampleCodec.encode(sample), { hour, floor })
    })
  }

  /** The sample to send, with only what the privacy policy lets out of the device [EF-2.9.5]. */
  private sampleOf(
    policy: CapturePolicy,
    taken: {
      rec: InferRecord
      served: InferRecord['model']
      outputs: Record<string, Tensor>
      reason: CaptureReason
      confidence: number | undefined
      shadow: { version: string; outputs: Record<string, Tensor> } | undefined
      ts: number
    },
  ): Sample {
    const { rec, served, outputs, reason, confidence, shadow } = taken
    // Nothing of the raw inputs outlives this line unless the policy lets it [EF-2.9.5].
    const filtered = filterInputs(rec.inputs, policy.privacy)
    const kept = filterOutputs(outputs, policy.privacy)
    const shadowKept = shadow && filterOutputs(shadow.outputs, policy.privacy).outputs
    const privacy = kept.dropped.length ? { ...filtered.report, droppedOutputs: kept.dropped } : filtered.report
    return {
      v: PROTOCOL_VERSION,
      deviceId: this.d.deviceId,
      sampleId: randomUUID(),
      ts: taken.ts,
      model: served.name,
      version: served.version,
      reason,
      ...(confidence !== undefined ? { confidence } : {}),
      inputs: encodeAll(filtered.inputs),
      ...(privacy ? { privacy } : {}),
      outputs: encodeAll(kept.outputs),
      ...(shadow && shadowKept ? { shadow: { version: shadow.version, outputs: encodeAll(shadowKept) } } : {}),
    }
  }

  /**
   * Queues an encoded sample unless it breaks a cap: the sample size limit, the hour's
   * budget (the floor reserved for it is swapped for its real size) or the bytes on disk.
   */
  private enqueueWithinCaps(policy: CapturePolicy, payload: Buffer, reserved: { hour: number; floor: number }): void {
    const { hour, floor } = reserved
    const extra = payload.length - floor
    if (this.hour === hour) this.hourBytes += extra
    if (
      payload.length > sampleCodec.maxBytes ||
      (this.hour === hour && this.hourBytes > policy.maxBytesPerHour) ||
      this.d.queuedBytes() + payload.length > policy.maxBytesOnDisk
    ) {
      if (this.hour === hour) this.hourBytes -= payload.length
      this.stats.capped++
      return
    }
    if (!this.d.enqueue(payload)) {
      if (this.hour === hour) this.hourBytes -= payload.length
      return
    }
    this.stats.captured++
    this.stats.capturedBytes += payload.length
  }
}
