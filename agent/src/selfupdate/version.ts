// The version of the running agent [EF-11.6]: its package's own
// edgefleet-package.json (beside dist/), so a self-updated agent reports the
// version it was released as; outside a package, the built-in one.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export function runningAgentVersion(builtIn: string): string {
  try {
    const file = join(import.meta.dirname ?? '.', '..', 'edgefleet-package.json')
    const v = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version
    return typeof v === 'string' ? v : builtIn
  } catch {
    return builtIn
  }
}
