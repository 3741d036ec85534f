// Bundles the console's browser code (hub/src/console/ui/main.tsx: typed
// TypeScript + Preact, type-checked by `pnpm typecheck`) into one minified
// script, hub/dist/console/bundle.js, which hub/src/console/routes.ts serves
// under a content-hashed URL. Run after `tsc -b` (the root build and test
// scripts do). Prints the bundle's size, raw and gzipped, so a change that
// bloats it shows in every build log (hub/test/api/console.test.ts caps it).
import { build } from 'rolldown'
import { fileURLToPath } from 'node:url'
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const out = here('../dist/console/bundle.js')

const { output } = await build({
  input: here('../src/console/ui/main.tsx'),
  platform: 'browser',
  tsconfig: here('../src/console/ui/tsconfig.json'),
  logLevel: 'warn',
  write: false,
  output: { format: 'iife', minify: true, codeSplitting: false },
})
mkdirSync(here('../dist/console'), { recursive: true })
// Written atomically: a test's hub may be reading it while another build runs.
const tmp = `${out}.${process.pid}.tmp`
writeFileSync(tmp, output[0].code)
renameSync(tmp, out)
const gz = gzipSync(output[0].code).length
console.log(`console bundle: ${(output[0].code.length / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped`)
