// What fetching, verifying and installing a signed model needs, shared by the
// updater (deploys and rollbacks) and the shadow manager (candidates): where
// builds go (slots, chunk cache), how chunks arrive, whose signature counts,
// which profile's build to ask for, and whom to tell.
import { EdgeFleetError, codeOf, compareVersions, type DeviceEvent, type Manifest } from '@edgefleet/shared'
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
  /** This agent's version, compared with manifests' `requires.agent` [EF-3.8]. */
  agentVersion: string
  /** Chunks requested at once. */
  fetchWindow: number
  downloadTimeoutMs: number
  report: (ev: EventReport) => void
  /** Models (for the runtime services, also conditions) changed: publish a fresh state. */
  onChange: () => void
}

/** Just the model-source members of a larger deps object (for passing them on). */
export function modelSourceOf(d: ModelSourceDeps): ModelSourceDeps {
  const { slots, chunks, host, transport, trust, profile, agentVersion } = d
  const { fetchWindow, downloadTimeoutMs, report, onChange } = d
  return {
    slots,
    chunks,
    host,
    transport,
    trust,
    profile,
    agentVersion,
    fetchWindow,
    downloadTimeoutMs,
    report,
    onChange,
  }
}

/** The failure report of one command: the event is sent and returned [EF-2.4]. */
export function failureReporter(
  report: (ev: EventReport) => void,
  base: Omit<EventReport, 'kind'>,
): (kind: 'rejected' | 'failed' | 'health_failed', err: unknown) => EventReport {
  return (kind, err) => {
    const ev: EventReport = { ...base, kind, code: codeOf(err), message: (err as Error).message.slice(0, 2000) }
    report(ev)
    return ev
  }
}

/**
 * Why a manifest cannot apply on this device, checked before anything is
 * downloaded: not signed by the hub's current key, or built for another
 * profile. Undefined when it can.
 */
export function manifestRefusal(d: Pick<ModelSourceDeps, 'trust' | 'profile'>, m: Manifest, sig: string) {
  if (!d.trust.verifyNew(m, sig)) return new EdgeFleetError('EF_ERR_SIGNATURE_INVALID', 'manifest')
  if (m.profile !== d.profile)
    return new EdgeFleetError('EF_ERR_MANIFEST_PROFILE_MISMATCH', `manifest for ${m.profile}, device is ${d.profile}`)
  return undefined
}

/** The dotted-number head of a runtime's version ("1.30.0-dev" → "1.30.0"), as compareVersions reads it. */
const numericVersion = (v: string): string => /^\d+(\.\d+)*/.exec(v)?.[0] ?? '0'

/**
 * [EF-3.8] Why this agent is too old for a manifest's `requires`, checked
 * after manifestRefusal and before anything is downloaded; undefined when it
 * is not. The runtime's version is read only when the manifest asks for one.
 */
export async function requirementRefusal(
  deps: Pick<ModelSourceDeps, 'agentVersion' | 'host'>,
  manifest: Manifest,
): Promise<EdgeFleetError | undefined> {
  const need = manifest.requires
  if (!need) return undefined
  const short: string[] = []
  if (need.agent !== undefined && compareVersions(numericVersion(deps.agentVersion), need.agent) < 0)
    short.push(`agent ${need.agent} (this is ${deps.agentVersion})`)
  if (need.ort !== undefined) {
    const ort = await deps.host.runtimeVersion()
    if (compareVersions(numericVersion(ort), need.ort) < 0) short.push(`ONNX Runtime ${need.ort} (this runs ${ort})`)
  }
  if (!short.length) return undefined
  return new EdgeFleetError(
    'EF_ERR_AGENT_TOO_OLD',
    `${manifest.model}@${manifest.version} needs ${short.join(' and ')}; update the agent`,
  )
}
