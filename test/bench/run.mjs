#!/usr/bin/env node
// `pnpm bench [name]`: runs test/bench/<name>.mjs (all when no name), one after another.
import { readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = dirname(fileURLToPath(import.meta.url))
const want = process.argv[2]
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
  .map((f) => f.slice(0, -4))
const names = want ? [want] : all
let failed = 0
for (const n of names) {
  process.stdout.write(`\n## ${n}\n`)
  const r = spawnSync(process.execPath, [join(dir, `${n}.mjs`), ...process.argv.slice(3)], { stdio: 'inherit' })
  if (r.status !== 0) failed++
}
process.exit(failed ? 1 : 0)
