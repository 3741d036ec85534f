// Bundles the built agent (dist/cli.js and what it imports, shared and mqtt.js
// included) into one file, dist/edgefleet-agent.mjs: one module record and one
// minified source instead of hundreds, which is most of what an idle agent's
// RSS pays for its own code (docs/BENCHMARKS.md, Agent runtime). Native
// modules stay external: they load their .node addons from node_modules.
// Run after `tsc -b` (the root build and test scripts do, and the e2e harness
// re-runs it when dist/ is newer than the bundle).
import { build } from 'rolldown'
import { fileURLToPath } from 'node:url'
import { chmodSync, renameSync, writeFileSync } from 'node:fs'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))

/** Bundles dist/<input> into dist/<output>, written atomically. */
async function bundle(input, output) {
  const out = here(`../dist/${output}`)
  const { output: chunks } = await build({
    input: here(`../dist/${input}`),
    platform: 'node',
    external: ['onnxruntime-node', 'onnxruntime-web', /^node:/],
    logLevel: 'warn',
    write: false,
    output: {
      format: 'esm',
      minify: true,
      // ort.ts imports onnxruntime-node lazily (external); everything else goes in the one file.
      codeSplitting: false,
    },
  })
  // Written atomically: test processes may start agents from it while another build runs.
  const tmp = `${out}.${process.pid}.tmp`
  writeFileSync(tmp, chunks[0].code)
  chmodSync(tmp, 0o755)
  renameSync(tmp, out)
}

await bundle('cli.js', 'edgefleet-agent.mjs')
// The launcher of an agent package [EF-11.6]: picks the agent slot, watches a trial, supervises without systemd.
await bundle('launch.js', 'edgefleet-launch.mjs')
