// A rollout to an older version must say so at creation [EF-8.13]: otherwise
// every device would refuse it with EF_ERR_DOWNGRADE_REFUSED (EF-4.6) one by
// one, wave after wave, and the rollout would fail on the devices instead of
// being refused up front.
import { EdgeFleetError, compareVersions } from '@edgefleet/shared'
import type { DeviceRow } from '../store/index.js'

/** Matched devices whose active version of `model` is newer than `version`, with that version. */
function newerOnDevices(model: string, version: string, devices: readonly DeviceRow[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const d of devices) {
    const live = d.state?.models?.find((m) => m.name === model)
    if (live && compareVersions(version, live.version) < 0) out.set(d.id, live.version)
  }
  return out
}

/** Refuses a rollout to an older version than matched devices run unless it is created as a rollback. */
export function refuseDowngrade(
  model: string,
  version: string,
  devices: readonly DeviceRow[],
  rollback: boolean,
): void {
  if (rollback) return
  const newer = newerOnDevices(model, version, devices)
  if (newer.size === 0) return
  const newest = [...new Set(newer.values())].sort(compareVersions).at(-1)
  throw new EdgeFleetError(
    'EF_ERR_ROLLOUT_DOWNGRADE',
    `${model}@${version} is older than ${newest} that ${newer.size} matched device(s) run ` +
      `(e.g. ${[...newer.keys()].slice(0, 3).join(', ')}); create it with rollback: true (CLI --rollback) to roll them back`,
  )
}
