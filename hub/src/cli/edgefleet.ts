#!/usr/bin/env node
// `edgefleet`: the operator's command line. Every command but `hub start` and
// `compile` talks to a running hub over its HTTP API. Each command module
// exports its definitions (command.ts); this file only lists them, in the
// order `edgefleet --help` shows them.
import { runCommandLine, type Command } from './command.js'
import { hubStartCommands } from './hub-start.js'
import { hubKeyCommands } from './hub-key.js'
import { deviceCommands } from './devices.js'
import { modelCommands } from './models.js'
import { deploymentCommands } from './deployments.js'
import { rolloutCommands } from './rollouts.js'
import { tokenCommands } from './tokens.js'
import { captureCommands } from './capture.js'
import { feedCommands } from './feed.js'
import { compileCommands } from './compile.js'
import { agentPackageCommands } from './agent-package.js'
import { agentCommands } from './agent.js'

export const COMMANDS: readonly Command[] = [
  ...hubStartCommands,
  ...hubKeyCommands,
  ...deviceCommands,
  ...modelCommands,
  ...deploymentCommands,
  ...rolloutCommands,
  ...tokenCommands,
  ...captureCommands,
  ...feedCommands,
  ...compileCommands,
  ...agentPackageCommands,
  ...agentCommands,
]

export function main(
  argv: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  return runCommandLine(COMMANDS, argv, out, err)
}

const invoked = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href
if (invoked) {
  main(process.argv.slice(2)).then(
    (code) => {
      // `hub start` returns once it has closed; leave the exit code alone so pending handles end it.
      if (code !== 0 || process.argv[2] !== 'hub') process.exitCode = code
    },
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack}\n`)
      process.exitCode = 1
    },
  )
}
