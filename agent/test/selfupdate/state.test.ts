// The launcher's decision before each start [EF-11.7]: a trial's starts are
// counted; after MAX_TRIAL_STARTS or past its deadline the previous slot runs
// and the rollback is left for the next agent to report; a slot without an
// agent bundle is never run; an unreadable state.json runs the installed agent.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { MAX_TRIAL_STARTS, decideStart, readSlotState, type SlotState } from '../../src/selfupdate/state.js'
import { tempDir } from '../fixtures/agent.js'

const trial: SlotState = {
  v: 1,
  current: 'b',
  trial: {
    slot: 'b',
    version: '2.0.0',
    from: 'a',
    fromVersion: '1.0.0',
    cmdId: 'c1',
    startedAt: 1000,
    deadlineMs: 5000,
    starts: 0,
  },
}
const all = () => true

describe('decideStart', () => {
  it('counts the starts of a trial within its deadline and runs it', () => {
    const s = decideStart(trial, 2000, all)
    expect(s.current).toBe('b')
    expect(s.trial?.starts).toBe(1)
  })

  it(`rolls back after ${MAX_TRIAL_STARTS} unconfirmed starts`, () => {
    const s = decideStart({ ...trial, trial: { ...trial.trial!, starts: MAX_TRIAL_STARTS } }, 2000, all)
    expect(s).toEqual({
      v: 1,
      current: 'a',
      report: {
        kind: 'agent_rolled_back',
        cmdId: 'c1',
        version: '2.0.0',
        fromVersion: '1.0.0',
        reason: expect.stringContaining('exited 2 times'),
      },
    })
  })

  it('rolls back a trial past its deadline', () => {
    const s = decideStart(trial, 1000 + 5001, all)
    expect(s.current).toBe('a')
    expect(s.report?.reason).toContain('did not confirm within 5000 ms')
  })

  it('never runs a slot without an agent bundle: the installed agent runs', () => {
    expect(decideStart({ v: 1, current: 'a' }, 0, (slot) => slot === 'base')).toEqual({ v: 1, current: 'base' })
  })

  it('an unreadable state.json runs the installed agent', () => {
    const { dir, cleanup } = tempDir()
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'state.json'), '{"v":1,"current":')
    expect(readSlotState(dir)).toEqual({ v: 1, current: 'base' })
    cleanup()
  })
})
