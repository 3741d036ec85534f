// Draws the scaling curve of test/bench/fleet-scale.mjs as one SVG: a small
// chart per figure, fleet size on a log x axis, one line per broker.
const PANELS = [
  ['hubRssMiB', 'hub RSS, MiB'],
  ['hubCpuCores', 'hub CPU, cores'],
  ['connectS', 'all connected, s'],
  ['reconnectAfterRestartS', 'all back after restart, s'],
  ['model1MbS', '1 MB model to all, s'],
  ['rollout4WavesS', '4-wave rollout (no soak), s'],
  ['ingestEventsPerS', 'ingest, events/s'],
  ['devicesListMs', 'GET devices?limit=50, ms'],
]
const COLORS = { aedes: '#1f77b4', mosquitto: '#ff7f0e' }
const WIDTH = 260
const HEIGHT = 170
const PAD = { l: 48, r: 10, t: 22, b: 28 }
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
const fmt = (v) =>
  v >= 1000 ? `${Math.round(v / 100) / 10}k` : v >= 10 ? String(Math.round(v)) : String(Math.round(v * 10) / 10)

function panel(results, key, title, x0, y0) {
  const pts = results.filter((r) => Number.isFinite(r[key]))
  const ns = [...new Set(results.map((r) => r.devices))].sort((a, b) => a - b)
  const maxY = Math.max(1e-9, ...pts.map((r) => r[key])) * 1.1
  const lx = (n) => Math.log10(n)
  const [a, b] = [lx(ns[0] ?? 1000), lx(ns[ns.length - 1] ?? 20000)]
  const px = (n) => x0 + PAD.l + ((lx(n) - a) / Math.max(1e-9, b - a)) * (WIDTH - PAD.l - PAD.r)
  const py = (v) => y0 + HEIGHT - PAD.b - (v / maxY) * (HEIGHT - PAD.t - PAD.b)
  const out = [`<text x="${x0 + WIDTH / 2}" y="${y0 + 14}" text-anchor="middle" font-size="12">${esc(title)}</text>`]
  out.push(`<line x1="${x0 + PAD.l}" y1="${py(0)}" x2="${x0 + WIDTH - PAD.r}" y2="${py(0)}" stroke="#999"/>`)
  out.push(`<line x1="${x0 + PAD.l}" y1="${py(0)}" x2="${x0 + PAD.l}" y2="${y0 + PAD.t}" stroke="#999"/>`)
  for (const f of [0.5, 1])
    out.push(
      `<text x="${x0 + PAD.l - 4}" y="${py((maxY * f) / 1.1) + 4}" text-anchor="end" font-size="9">${fmt((maxY * f) / 1.1)}</text>`,
    )
  for (const n of ns)
    out.push(
      `<text x="${px(n)}" y="${y0 + HEIGHT - PAD.b + 12}" text-anchor="middle" font-size="9">${n >= 1000 ? `${n / 1000}k` : n}</text>`,
    )
  for (const [broker, color] of Object.entries(COLORS)) {
    const line = pts.filter((r) => r.broker === broker).sort((p, q) => p.devices - q.devices)
    if (line.length === 0) continue
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${line.map((r) => `${px(r.devices).toFixed(1)},${py(r[key]).toFixed(1)}`).join(' ')}"/>`,
    )
    for (const r of line)
      out.push(`<circle cx="${px(r.devices).toFixed(1)}" cy="${py(r[key]).toFixed(1)}" r="2.5" fill="${color}"/>`)
  }
  return out.join('\n')
}

/** The whole figure: 4 × 2 panels and a legend. */
export function drawFleetScale(results) {
  const cols = 4
  const rows = Math.ceil(PANELS.length / cols)
  const width = cols * WIDTH
  const height = rows * HEIGHT + 30
  const body = PANELS.map(([k, t], i) => panel(results, k, t, (i % cols) * WIDTH, Math.floor(i / cols) * HEIGHT))
  const legend = Object.entries(COLORS).map(
    ([b, c], i) =>
      `<rect x="${10 + i * 120}" y="${height - 18}" width="12" height="4" fill="${c}"/><text x="${26 + i * 120}" y="${height - 13}" font-size="11">${b}</text>`,
  )
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${body.join('\n')}
${legend.join('\n')}
<text x="${width - 10}" y="${height - 13}" text-anchor="end" font-size="10">simulated devices (log scale); drawn by test/bench/fleet-scale.mjs</text>
</svg>
`
}
