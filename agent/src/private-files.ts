// Owner-only folders: data folders 0700 (agent.db and keys are created 0600
// by their own modules), so other local users read neither secrets nor fleet
// data. Modes are set on creation and tightened on folders that already
// exist (e.g. one made by a packaging script).
import { chmodSync, mkdirSync } from 'node:fs'

/** Creates `dir` (and missing parents) 0700, and narrows an existing `dir` to 0700. */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
}
