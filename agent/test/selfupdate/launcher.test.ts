// The launcher finds the agent's data folder the way the agent's config does
// [EF-11.6]: --data (both spellings), then EF_DATA, then the --config file's
// dataDir, then the default; a config file it cannot read is left to the agent.
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { dataDirOf } from '../../src/selfupdate/launcher.js'
import { tempDir } from '../fixtures/agent.js'

const { dir, cleanup } = tempDir()
afterAll(cleanup)
const config = join(dir, 'agent.json')
writeFileSync(config, JSON.stringify({ dataDir: '/var/lib/from-file' }))

describe('dataDirOf', () => {
  it('takes --data first, in either spelling', () => {
    expect(dataDirOf(['--data', '/d1', '--config', config], { EF_DATA: '/env' })).toBe('/d1')
    expect(dataDirOf(['--data=/d2'], {})).toBe('/d2')
  })

  it('then EF_DATA, then the config file, then .data/agent', () => {
    expect(dataDirOf(['--config', config], { EF_DATA: '/env' })).toBe('/env')
    expect(dataDirOf([`--config=${config}`], {})).toBe('/var/lib/from-file')
    expect(dataDirOf(['--config', join(dir, 'missing.json')], {})).toBe(resolve('.data/agent'))
    expect(dataDirOf([], {})).toBe(resolve('.data/agent'))
  })
})
