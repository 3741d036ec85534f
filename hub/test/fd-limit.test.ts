// The hub's file-descriptor limit at start: a real `edgefleet hub start`
// child started under a low limit (prlimit 512:4096). Node already lifts the
// soft limit to the hard one; the hub lifts the hard limit too when it may
// (CAP_SYS_RESOURCE), to the kernel's fs.nr_open capped at 1,048,576, and
// logs it; /proc shows the limit in force.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { afterEach, expect, it } from 'vitest'
import { defaultFdTarget, readFdLimit } from '../src/fd-limit.js'
import { tempDir } from './fixtures/hub.js'

const HUB_CLI = fileURLToPath(new URL('../dist/cli/edgefleet.js', import.meta.url))
const cleanups: (() => void)[] = []
afterEach(() => cleanups.splice(0).forEach((f) => f()))

function startUnder(prlimitArgs: string[]): Promise<{ proc: ChildProcess; log: () => string }> {
  const { dir, cleanup } = tempDir()
  const args = ['hub', 'start', '--data', dir, '--mqtt-port', '0', '--http-port', '0', '--json', '--log-level', 'info']
  const proc = spawn('prlimit', [...prlimitArgs, process.execPath, HUB_CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  cleanups.push(() => {
    proc.kill('SIGKILL')
    cleanup()
  })
  let log = ''
  proc.stderr?.on('data', (c: Buffer) => (log += c.toString()))
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`hub exited ${code}: ${log}`)))
    createInterface({ input: proc.stdout }).on('line', (line) => {
      if (line.includes('"httpUrl"')) resolve({ proc, log: () => log })
    })
  })
}

it('lifts the limit as far as it may and logs the limit in force', async () => {
  const { proc, log } = await startUnder(['--nofile=512:4096'])
  const got = readFdLimit(proc.pid)
  // May a process here raise its own hard limit (CAP_SYS_RESOURCE)? Containers often drop it, even for root.
  const mayRaise =
    spawnSync('prlimit', ['--nofile=512:4096', 'sh', '-c', 'prlimit --pid $$ --nofile=8192:8192']).status === 0
  if (mayRaise) {
    const want = Math.min(defaultFdTarget, Number(readFileSync('/proc/sys/fs/nr_open', 'utf8')))
    expect(got).toEqual({ soft: want, hard: want })
    expect(log()).toContain(`"from":4096,"to":${want},"msg":"file-descriptor limit raised"`)
  } else {
    expect(got).toEqual({ soft: 4096, hard: 4096 })
    expect(log()).toMatch(/"fdLimit":4096,"hard":4096.*caps the devices this hub can hold/)
  }
}, 30_000)
