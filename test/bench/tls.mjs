#!/usr/bin/env node
// TLS beside plain in one run [EF-10, issue 11]: the distribution figures
// (20 MB to N agents, 100 MB to one agent over MQTT and HTTP) without and with
// TLS, then the connect rate over TLS with password vs certificate auth.
// Each part runs in its own process (test/bench/distribution.mjs and
// connect-rate.mjs); this prints one side-by-side JSON.
// Usage: node test/bench/tls.mjs [--agents 200] [--procs 4] [--mb 20] [--big-mb 100] [--seconds 30] [--devices 400]
import { execFileSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchArgs } from './support/args.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const { values: args, skip } = benchArgs(['agents', 'procs', 'mb', 'big-mb', 'seconds', 'devices'])
const pass = (names) => names.flatMap((n) => (args[n] !== undefined ? [`--${n}`, args[n]] : []))
const run = (script, args) =>
  JSON.parse(
    execFileSync(process.execPath, [join(here, script), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 * 1024 * 1024,
    }).toString(),
  )
const out = {
  loadBefore: loadavg()
    .map((x) => x.toFixed(2))
    .join(' '),
}
if (!skip.has('distribution')) {
  const distArgs = [...pass(['agents', 'procs', 'mb', 'big-mb']), '--skip', 'delta']
  const plain = run('distribution.mjs', distArgs)
  const tls = run('distribution.mjs', [...distArgs, '--tls'])
  const pick = (r) => ({
    fanoutTransferMs: r.fanout?.edgefleetTransferMs,
    fanoutActivatedMs: r.fanout?.edgefleetActivatedMs,
    rawFanoutMs: r.fanout?.rawFanoutMs,
    hubPeakRssMiB: Math.round(r.fanout?.peakRssMiB?.hub ?? NaN),
    bigMqttTransferMs: r.big?.mqtt?.transferMs,
    bigHttpTransferMs: r.big?.http?.transferMs,
  })
  out.distribution = { agents: plain.fanout?.agents, plain: pick(plain), tls: pick(tls) }
  console.error(JSON.stringify(out.distribution))
}
if (!skip.has('connect')) out.connect = run('connect-rate.mjs', pass(['seconds', 'devices', 'procs']))
out.loadAfter = loadavg()
  .map((x) => x.toFixed(2))
  .join(' ')
console.log(JSON.stringify(out, null, 2))
