// The command framework every `edgefleet` command is built on: a command
// declares its words, help, its own options and a run function; this module
// finds the command, parses its options strictly (an option another command
// takes is still unknown here), prints help, and turns errors into exit codes
// (0 ok, 1 failed, 2 usage). Command modules export their definitions; the
// entry point (edgefleet.ts) only lists them.
import { parseArgs } from 'node:util'
import { codeOf } from '@edgefleet/shared'
import { HubClient } from './http.js'

/** One option as node:util parseArgs takes it. */
export interface OptionSpec {
  type: 'string' | 'boolean'
  multiple?: boolean
  short?: string
}
export type OptionSet = Record<string, OptionSpec>

/** Options every command takes. */
export const COMMON_OPTIONS = {
  hub: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSet

/** Wrong usage: the message and the command's help go to stderr, exit code 2. */
export class UsageError extends Error {}

/** A command's parsed options and positionals; reading an option the command did not declare is a bug. */
export class Args {
  constructor(
    readonly command: string,
    /** Arguments after the command's words (`device add ID` → [ID]). */
    readonly pos: readonly string[],
    private readonly values: Record<string, string | boolean | (string | boolean)[] | undefined>,
    private readonly declared: OptionSet,
  ) {}

  private spec(name: string): OptionSpec {
    const s = this.declared[name]
    if (!s) throw new Error(`${this.command} reads --${name}, which it does not declare`)
    return s
  }

  str(name: string): string | undefined {
    this.spec(name)
    const v = this.values[name]
    return typeof v === 'string' ? v : undefined
  }

  strs(name: string): string[] {
    this.spec(name)
    const v = this.values[name]
    return Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []
  }

  flag(name: string): boolean {
    this.spec(name)
    return this.values[name] === true
  }

  /** The string values of `names`, by name (for helpers that read a group of options such as the gate flags). */
  pick(names: readonly string[]): Record<string, string | undefined> {
    return Object.fromEntries(names.map((n) => [n, this.str(n)]))
  }
}

interface CommandContext {
  args: Args
  /** Client for --hub / $EDGEFLEET_HUB with --token / $EDGEFLEET_TOKEN. */
  hub: HubClient
  /** Prints `data` as JSON with --json, else the text. */
  emit: (data: unknown, text: () => string) => void
  print: (s: string) => void
  out: NodeJS.WritableStream
  err: NodeJS.WritableStream
}

export interface Command {
  /** The words that name it: 'device add', 'telemetry'. */
  name: string
  /** Other words that name it ('token list' for 'tokens list'). */
  aliases?: string[]
  /** One line in `edgefleet --help`: [synopsis, what it does]; commands covered by another's line leave it out. */
  summary?: [string, string]
  /** `edgefleet <name> --help`: a usage line, then one line per option. */
  help: string
  /** The command's own options; COMMON_OPTIONS are added. */
  options: OptionSet
  run: (ctx: CommandContext) => Promise<number>
}

/** Defines a command (identity; gives the object literal its type). */
export function command(c: Command): Command {
  return c
}

const DEFAULT_HUB = 'http://127.0.0.1:8080'

/** `edgefleet --help`: built from the commands' summaries, so a new command documents itself. */
function overview(commands: readonly Command[]): string {
  const col = 30
  const lines = commands.flatMap((c) => {
    if (!c.summary) return []
    const [synopsis, what] = c.summary
    // A synopsis too long for the column gets its description on the next line.
    return synopsis.length < col
      ? [`  ${synopsis.padEnd(col)} ${what}`]
      : [`  ${synopsis}`, `  ${''.padEnd(col)} ${what}`]
  })
  return `edgefleet — edge-inference fleet manager

Usage: edgefleet <command> [options]

Commands:
${lines.join('\n')}

Common options:
  --hub URL     hub HTTP API (env EDGEFLEET_HUB; default ${DEFAULT_HUB})
  --token T     API token (env EDGEFLEET_TOKEN; the hub writes an admin token to <data>/admin-token)
  --ca FILE     CA the hub's HTTPS certificate must chain to (env EDGEFLEET_CA; 'hub start --tls' prints it)
  --json        machine-readable output
  --help        help for a command`
}

/** Index in argv of the command's words, skipping common options given before them (`--hub URL rollout list`). */
function commandWords(argv: readonly string[]): { words: string[]; at: number[] } {
  const words: string[] = []
  const at: number[] = []
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i]
    if (a === '--hub' || a === '--token' || a === '--ca') i++
    else if (a.startsWith('-')) continue
    else {
      words.push(a)
      at.push(i)
    }
  }
  return { words, at }
}

function find(commands: readonly Command[], words: string[]): { cmd: Command; used: number } | undefined {
  for (const used of [2, 1]) {
    if (words.length < used) continue
    const name = words.slice(0, used).join(' ')
    const cmd = commands.find((c) => c.name === name || c.aliases?.includes(name))
    if (cmd) return { cmd, used }
  }
  return undefined
}

/** Turns parseArgs' messages into ones naming the command. */
function parseError(e: Error): UsageError {
  const unknown = /Unknown option '([^']+)'/.exec(e.message)
  return new UsageError(unknown ? `unknown option ${unknown[1]}` : e.message)
}

/** Runs the command line against `commands`; returns the exit code. */
export async function runCommandLine(
  commands: readonly Command[],
  argv: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const print = (s: string) => out.write(s + '\n')
  const { words, at } = commandWords(argv)
  const wantsHelp = argv.includes('--help') || argv.includes('-h')
  if (!words.length) {
    print(overview(commands))
    // Asked-for help is a success; a bare `edgefleet` is a usage error.
    return wantsHelp ? 0 : 2
  }
  const found = find(commands, words)
  if (!found) {
    const group = commands.filter((c) => c.name.startsWith(`${words[0]} `))
    if (wantsHelp && group.length && words.length === 1) {
      print(group.map((c) => c.help.split('\n')[0]).join('\n'))
      return 0
    }
    err.write(`unknown command: ${words.join(' ')}\n\n${overview(commands)}\n`)
    return 2
  }
  const { cmd, used } = found
  return runCommand(
    cmd,
    argv.filter((_, i) => !at.slice(0, used).includes(i)),
    out,
    err,
  )
}

/** Runs one command on its arguments (the command's words removed): parse strictly, help, run, exit code. */
async function runCommand(
  cmd: Command,
  rest: readonly string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const print = (s: string) => out.write(s + '\n')
  const options = { ...cmd.options, ...COMMON_OPTIONS }
  let args: Args
  try {
    const parsed = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true })
    args = new Args(cmd.name, parsed.positionals, parsed.values, options)
  } catch (e) {
    err.write(`edgefleet ${cmd.name}: ${parseError(e as Error).message}\n${cmd.help}\n`)
    return 2
  }
  if (args.flag('help')) {
    print(cmd.help)
    return 0
  }
  const json = args.flag('json')
  const hub = new HubClient(
    args.str('hub') ?? process.env.EDGEFLEET_HUB ?? DEFAULT_HUB,
    args.str('token') ?? (process.env.EDGEFLEET_TOKEN || undefined),
    args.str('ca') ?? (process.env.EDGEFLEET_CA || undefined),
  )
  try {
    return await cmd.run({
      args,
      hub,
      emit: (data, text) => print(json ? JSON.stringify(data) : text()),
      print,
      out,
      err,
    })
  } catch (e) {
    if (e instanceof UsageError) {
      err.write(`edgefleet ${cmd.name}: ${e.message}\n${cmd.help}\n`)
      return 2
    }
    const code = codeOf(e)
    if (json) print(JSON.stringify({ error: { code, message: (e as Error).message } }))
    else err.write(`error ${code}: ${(e as Error).message}\n`)
    return 1
  }
}
