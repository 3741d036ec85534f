// Deployment targets: profile=P | tag=k=v | device=ID.
import { EdgeFleetError, isValidId } from '@edgefleet/shared'
import { TAG_KEY } from '../store/devices.js'

export type Target = { profile: string } | { tag: [string, string] } | { device: string }

export function parseTarget(text: string): Target {
  const eq = text.indexOf('=')
  const key = text.slice(0, eq)
  const value = text.slice(eq + 1)
  if (eq > 0 && value.length > 0) {
    if (key === 'profile' && isValidId(value)) return { profile: value }
    if (key === 'device' && isValidId(value)) return { device: value }
    if (key === 'tag') {
      const e2 = value.indexOf('=')
      if (e2 > 0 && e2 < value.length - 1 && TAG_KEY.test(value.slice(0, e2)))
        return { tag: [value.slice(0, e2), value.slice(e2 + 1)] }
    }
  }
  throw new EdgeFleetError('EF_ERR_TARGET_INVALID', JSON.stringify(text))
}
