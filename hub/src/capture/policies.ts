// Capture policies as fleet objects [EF-8.15]: stored on the hub, targeted by
// a device selector (EF-8.2), and turned into each matching device's list of
// device-side policies (EF-2.9.2). A change is sent at once to online devices
// whose list changed; a device that joins or reconnects gets its list again
// (the same hook that resends open deploys), and a deleted policy is
// withdrawn by sending the list without it.
import { randomBytes, randomUUID } from 'node:crypto'
import { EdgeFleetError, type CapturePolicy } from '@edgefleet/shared'
import type { CapturePolicyBody, CapturePolicyRow, DeviceRow, HubStore } from '../store/index.js'
import { matches, toSelector, type Selector } from '../rollouts/selector.js'
import { validateCapturePolicy } from './validate.js'

export interface CapturePolicyDeps {
  store: HubStore
  now: () => number
  /** Sends a device its whole capture-policy list (a signed `capture-policy` command, EF-2.3.6). */
  send: (deviceId: string, policies: CapturePolicy[]) => Promise<unknown>
  onError?: (deviceId: string, err: Error) => void
}

/** What an operator gives; the selector as text or tree. */
export interface CapturePolicyInput extends CapturePolicyBody {
  name?: string
  selector: unknown
  model?: string | null
}

/** Fields to replace; `null` clears an optional one (`model: null`: every model). */
export type CapturePolicyPatch = { [K in keyof CapturePolicyInput]?: CapturePolicyInput[K] | null }

/** A stored policy and how many active devices it matches now. */
export type CapturePolicyView = CapturePolicyRow & { matched: number }

const sameList = (a: CapturePolicy[] | undefined, b: CapturePolicy[]) => JSON.stringify(a ?? []) === JSON.stringify(b)

export class CapturePolicies {
  constructor(private readonly d: CapturePolicyDeps) {}

  list(): CapturePolicyView[] {
    const devices = this.d.store.devices.activeSince()
    return this.d.store.capturePolicies.list().map((p) => this.view(p, devices))
  }

  get(id: string): CapturePolicyView {
    return this.view(this.row(id), this.d.store.devices.activeSince())
  }

  /** Validates, stores, and sends the new lists; answers the policy and the devices it was sent to. */
  async create(input: CapturePolicyInput): Promise<{ policy: CapturePolicyView; sent: number }> {
    const now = this.d.now()
    const id = `cp-${randomUUID().slice(0, 8)}`
    const row = this.prepare({ id, name: input.name ?? id, createdAt: now, updatedAt: now }, input)
    this.d.store.capturePolicies.put(row)
    return { policy: this.get(id), sent: await this.apply() }
  }

  /** Replaces the fields given; `null` clears an optional field. */
  async update(id: string, patch: CapturePolicyPatch): Promise<{ policy: CapturePolicyView; sent: number }> {
    const old = this.row(id)
    const merged = new Map<string, unknown>(
      Object.entries({ ...old.body, selector: old.selector, model: old.model, name: old.name }),
    )
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) merged.delete(key)
      else if (value !== undefined) merged.set(key, value)
    }
    const input = Object.fromEntries(merged) as unknown as CapturePolicyInput // the stored row's fields, overlaid by the route-validated patch
    const meta = { id, name: input.name ?? old.name, createdAt: old.createdAt, updatedAt: this.d.now() }
    const row = this.prepare(meta, input, old)
    this.d.store.capturePolicies.put(row)
    return { policy: this.get(id), sent: await this.apply() }
  }

  /** Deletes and withdraws the policy from the devices that had it. */
  async delete(id: string): Promise<{ id: string; sent: number }> {
    this.row(id)
    this.d.store.capturePolicies.delete(id)
    return { id, sent: await this.apply() }
  }

  /** On (re)connect [EF-8.15]: the device's list again, or an empty one if fleet policies no longer reach it. */
  async resend(deviceId: string): Promise<void> {
    const dev = this.d.store.devices.get(deviceId)
    if (dev?.status !== 'active') return
    const want = this.listFor(dev, this.d.store.capturePolicies.list())
    const had = this.d.store.capturePolicies.sentTo(deviceId)
    // A device fleet policies never reached keeps whatever per-device policy it was given.
    if (want.length === 0 && (had === undefined || had.length === 0)) return
    await this.sendList(deviceId, want)
  }

  /** The device-side list for one device: every matching policy, oldest first (the first per model wins). */
  listFor(dev: DeviceRow, rows: CapturePolicyRow[]): CapturePolicy[] {
    return rows
      .filter((p) => matches(p.selector as Selector, dev))
      .map((p) => ({ policyId: p.id, ...(p.model !== null ? { model: p.model } : {}), ...p.body }))
  }

  /** Sends every online active device whose list changed; offline ones get theirs on reconnect. */
  private async apply(): Promise<number> {
    const rows = this.d.store.capturePolicies.list()
    let sent = 0
    for (const dev of this.d.store.devices.activeSince()) {
      const want = this.listFor(dev, rows)
      if (!dev.online || sameList(this.d.store.capturePolicies.sentTo(dev.id), want)) continue
      if (await this.sendList(dev.id, want)) sent++
    }
    return sent
  }

  private async sendList(deviceId: string, policies: CapturePolicy[]): Promise<boolean> {
    try {
      await this.d.send(deviceId, policies)
      this.d.store.capturePolicies.recordSent(deviceId, policies, this.d.now())
      return true
    } catch (err) {
      this.d.onError?.(deviceId, err as Error)
      return false
    }
  }

  private row(id: string): CapturePolicyRow {
    const row = this.d.store.capturePolicies.get(id)
    if (!row) throw new EdgeFleetError('EF_ERR_CAPTURE_POLICY_NOT_FOUND', id)
    return row
  }

  /** Normal-form selector, checked privacy filter, a hash key when inputs are hashed. */
  private prepare(
    meta: Pick<CapturePolicyRow, 'id' | 'name' | 'createdAt' | 'updatedAt'>,
    input: CapturePolicyInput,
    old?: CapturePolicyRow,
  ): CapturePolicyRow {
    const selector = toSelector(input.selector)
    const model = input.model ?? null
    validateCapturePolicy(this.d.store, model, input.privacy)
    const body: CapturePolicyBody = {
      random: input.random,
      maxBytesPerHour: input.maxBytesPerHour,
      maxBytesOnDisk: input.maxBytesOnDisk,
      ...(input.confidenceBelow !== undefined ? { confidenceBelow: input.confidenceBelow } : {}),
      ...(input.disagreement !== undefined ? { disagreement: input.disagreement } : {}),
      ...(input.privacy !== undefined ? { privacy: input.privacy } : {}),
    }
    if (body.privacy?.hashInputs?.length && body.privacy.hashKey === undefined)
      body.privacy = { ...body.privacy, hashKey: old?.body.privacy?.hashKey ?? randomBytes(16).toString('hex') }
    return { ...meta, selector, model, body }
  }

  private view(p: CapturePolicyRow, devices: DeviceRow[]): CapturePolicyView {
    return { ...p, matched: devices.filter((dev) => matches(p.selector as Selector, dev)).length }
  }
}
