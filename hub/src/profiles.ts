// Firmware profiles from the firmware-profiles/ folder (data both sides read).
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import cron from 'node-cron'
import { EdgeFleetError, profileCodec, profileProblems, type FirmwareProfile } from '@edgefleet/shared'

/** firmware-profiles/ of this checkout (hub/dist/profiles.js → ../../firmware-profiles). */
export const DEFAULT_PROFILES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'firmware-profiles')

export function loadProfiles(dir = DEFAULT_PROFILES_DIR): Map<string, FirmwareProfile> {
  const out = new Map<string, FirmwareProfile>()
  if (!existsSync(dir)) return out
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.json') || file.endsWith('.schema.json')) continue
    let p: FirmwareProfile
    try {
      p = profileCodec.decode(readFileSync(join(dir, file)))
    } catch (err) {
      throw new EdgeFleetError('EF_ERR_PROFILE_INVALID', `${file}: ${(err as Error).message}`)
    }
    const problems = [...profileProblems(p), ...windowProblems(p)]
    if (problems.length) throw new EdgeFleetError('EF_ERR_PROFILE_INVALID', `${file}: ${problems.join('; ')}`)
    out.set(p.id, p)
  }
  return out
}

/**
 * The window's cron must be one the hub's scheduler reads (node-cron lives in the hub, not in shared):
 * an impossible date ("0 0 31 2 *") would otherwise pass the schema and fail every deploy to the class
 * with an internal error when the hub asks whether the window is open [EF-5.2, EF-5.5].
 */
function windowProblems(p: FirmwareProfile): string[] {
  const expr = p.maintenanceWindow.cron
  return cron.validate(expr)
    ? []
    : [`maintenanceWindow.cron ${JSON.stringify(expr)} is not a cron expression node-cron accepts`]
}
