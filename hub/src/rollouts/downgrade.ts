// A rollout to an older version must say so at creation [EF-8.13]: otherwise
// every device would refuse it with EF_ERR_DOWNGRADE_REFUSED (EF-4.6) one by
// one, wave after wave, and the rollout would fail on the devices instead of
// being refused up front.
import { EdgeFleetError, compareVersions } from '@edgefleet/shared'
import type { DeviceRow, RolloutRow } from '../store/index.js'
import { isAgentRollout, liveVersion } from './subject.js'

/** Matched devices whose running version of the subject is newer than `version`, with that version. */
function newerOnDevices(
  subject: Pick<RolloutRow, 'model' | 'spec'>,
  version: string,
  devices: readonly DeviceRow[],
): Map<string, string> {
  const out = new Map<string, string>()
  for (const device of devices) {
    const live = liveVersion(subject, device)
    if (live !== null && compareVersions(version, live) < 0) out.set(device.id, live)
  }
  return out
}

/** Refuses a rollout to an older version than matched devices run unless it is created as a rollback. */
export function refuseDowngrade(
  subject: Pick<RolloutRow, 'model' | 'spec'>,
  version: string,
  devices: readonly DeviceRow[],
  rollback: boolean,
): void {
  if (rollback) return
  const newer = newerOnDevices(subject, version, devices)
  if (newer.size === 0) return
  const newest = [...new Set(newer.values())].sort(compareVersions).at(-1)
  throw new EdgeFleetError(
    'EF_ERR_ROLLOUT_DOWNGRADE',
    `${isAgentRollout(subject) ? 'agent ' : `${subject.model}@`}${version} is older than ${newest} that ${newer.size} matched device(s) run ` +
      `(e.g. ${[...newer.keys()].slice(0, 3).join(', ')}); create it with rollback: true (CLI --rollback) to roll them back`,
  )
}
