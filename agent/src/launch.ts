#!/usr/bin/env node
// `edgefleet-launch`: what an agent package's systemd unit starts [EF-11.6].
// Same arguments as edgefleet-agent; it runs the agent slot state.json names
// (selfupdate/launcher.ts). `--supervise` (first argument): no systemd, this
// process restarts the agent itself after a hand-over or a crash.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runAgent, supervise } from './selfupdate/launcher.js'

const self = fileURLToPath(import.meta.url)
const args = process.argv.slice(2)
if (args[0] === '--supervise') {
  const delay = Number(process.env.EF_RESTART_DELAY_MS ?? 1000)
  supervise(self, args.slice(1), Number.isFinite(delay) && delay >= 0 ? delay : 1000)
} else {
  // The installed package's folder: this file is its dist/edgefleet-launch.mjs.
  runAgent(join(dirname(self), '..'), args).catch((err: unknown) => {
    process.stderr.write(`edgefleet-launch: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  })
}
