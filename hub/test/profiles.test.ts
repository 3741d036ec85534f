// The hub's profile loader: every shipped profile loads, and a window cron the
// hub's scheduler cannot read is refused at load with EF_ERR_PROFILE_INVALID
// (it used to load and then fail every deploy to the class as EF_ERR_INTERNAL).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DEFAULT_PROFILES_DIR, loadProfiles } from '../src/profiles.js'
import { tempDir } from './fixtures/hub.js'

const tmp = tempDir('ef-profiles-')
afterAll(() => tmp.cleanup())

/** A folder holding gateway-rpi4 with its maintenance window's cron replaced. */
function withCron(expr: string): string {
  const profile = JSON.parse(readFileSync(join(DEFAULT_PROFILES_DIR, 'gateway-rpi4.json'), 'utf8'))
  profile.maintenanceWindow.cron = expr
  const dir = join(tmp.dir, String(Math.random()).slice(2))
  mkdirSync(dir)
  writeFileSync(join(dir, 'gateway-rpi4.json'), JSON.stringify(profile))
  return dir
}

describe('loadProfiles', () => {
  it('loads every shipped profile', () => {
    expect(loadProfiles().size).toBeGreaterThanOrEqual(8)
  })

  it('loads a window that opens rarely (29 February)', () => {
    expect(loadProfiles(withCron('0 0 29 2 *')).get('gateway-rpi4')?.maintenanceWindow.cron).toBe('0 0 29 2 *')
  })

  it.each(['0 0 31 2 *', '61 * * * *', '0 0 * * 8'])(
    'refuses the window cron %j with EF_ERR_PROFILE_INVALID',
    (expr) => {
      expect(() => loadProfiles(withCron(expr))).toThrow(
        expect.objectContaining({
          code: 'EF_ERR_PROFILE_INVALID',
          message: expect.stringContaining(`maintenanceWindow.cron ${JSON.stringify(expr)}`),
        }),
      )
    },
  )
})
