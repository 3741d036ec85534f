// The agent's event-loop monitor [EF-11.10]: a block of the main thread
// longer than the threshold is reported once with how long it lasted; the
// ordinary turns of an idle loop are not. (The trial's watchdog, which kills
// the process, is driven end to end in test/e2e/agent-selfupdate.test.ts.)
import { afterEach, describe, expect, it } from 'vitest'
import { watchLoopDelay } from '../../src/selfupdate/loop-watchdog.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** Keeps the main thread busy for `ms`: no timer or I/O callback runs meanwhile. */
function block(ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) {
    // spin
  }
}

let stop: (() => void) | undefined
afterEach(() => stop?.())

describe('watchLoopDelay', () => {
  it('reports a block longer than the threshold once, with its length', async () => {
    const reports: number[] = []
    stop = watchLoopDelay((ms) => reports.push(ms), { reportBlockMs: 300, beatMs: 50 })
    await sleep(200)
    expect(reports).toEqual([]) // an idle loop turns on time
    block(700)
    await sleep(200)
    expect(reports).toHaveLength(1)
    expect(reports[0]).toBeGreaterThanOrEqual(300)
    expect(reports[0]).toBeLessThan(1500)
  })

  it('stays quiet for blocks under the threshold and after stop', async () => {
    const reports: number[] = []
    stop = watchLoopDelay((ms) => reports.push(ms), { reportBlockMs: 1000, beatMs: 50 })
    block(300)
    await sleep(150)
    stop()
    block(1200)
    await sleep(150)
    expect(reports).toEqual([])
  })
})
