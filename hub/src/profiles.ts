// Firmware profiles from the firmware-profiles/ folder (data both sides read).
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
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
    const problems = profileProblems(p)
    if (problems.length) throw new EdgeFleetError('EF_ERR_PROFILE_INVALID', `${file}: ${problems.join('; ')}`)
    out.set(p.id, p)
  }
  return out
}
