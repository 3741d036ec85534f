// What fetching, verifying and installing a signed model needs, shared by the
// updater (deploys and rollbacks) and the shadow manager (candidates): where
// builds go (slots, chunk cache), how chunks arrive, whose signature counts,
// which profile's build to ask for, and whom to tell.
import type { DeviceEvent } from '@edgefleet/shared'
import type { ModelHost } from '../runtime/host.js'
import type { HubTrust } from '../trust.js'
import type { ChunkStore } from './chunks.js'
import type { ChunkTransport } from './download.js'
import type { Slots } from './slots.js'

export type EventReport = Omit<DeviceEvent, 'v' | 'deviceId' | 'ts'>

export interface ModelSourceDeps {
  slots: Slots
  chunks: ChunkStore
  host: ModelHost
  transport: ChunkTransport
  /** Hub keys: new manifests verify under the current one [EF-3.3, EF-3.6]. */
  trust: HubTrust
  /** Firmware profile id: the build this device asks for. */
  profile: string
  /** Chunks requested at once. */
  fetchWindow: number
  downloadTimeoutMs: number
  report: (ev: EventReport) => void
  /** Models (for the runtime services, also conditions) changed: publish a fresh state. */
  onChange: () => void
}

/** Just the model-source members of a larger deps object (for passing them on). */
export function modelSourceOf(d: ModelSourceDeps): ModelSourceDeps {
  const { slots, chunks, host, transport, trust, profile, fetchWindow, downloadTimeoutMs, report, onChange } = d
  return { slots, chunks, host, transport, trust, profile, fetchWindow, downloadTimeoutMs, report, onChange }
}
