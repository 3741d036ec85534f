// Prometheus text exposition (format 0.0.4): one metric family at a time.
// Both the hub's and the agent's /metrics use it; no client library needed.

export type PromSample = [labels: Record<string, string>, value: number]

export function promFamily(name: string, type: 'gauge' | 'counter', help: string, samples: PromSample[]): string {
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`]
  for (const [labels, value] of samples) {
    const l = Object.entries(labels)
    lines.push(`${name}${l.length ? `{${l.map(([k, v]) => `${k}="${esc(v)}"`).join(',')}}` : ''} ${value}`)
  }
  return lines.join('\n')
}
