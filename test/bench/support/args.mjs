// Command-line options of the benchmark scripts: node's parseArgs with string
// values (numbers are read where they are used, with their defaults there),
// the listed boolean flags, and `--skip a,b` naming parts not to run.
import { parseArgs } from 'node:util'

/** Parses `--name value` for each of `names` and the boolean `flags`; `skip` holds the parts `--skip` names. */
export function benchArgs(names, { flags = [] } = {}) {
  const options = Object.fromEntries([
    ...[...names, 'skip'].map((name) => [name, { type: 'string' }]),
    ...flags.map((name) => [name, { type: 'boolean' }]),
  ])
  const { values } = parseArgs({ options })
  return { values, skip: new Set((values.skip ?? '').split(',').filter(Boolean)) }
}
