// `edgefleet compile`: the compiler without a hub. This module only declares
// the command (options shared with `model add`); the work is in
// compiler/cli.ts, imported when the command runs so that other commands do
// not load ONNX Runtime.
import { command, UsageError, type Args, type Command } from './command.js'
import { MODEL_OPTIONS, MODEL_OPTIONS_HELP, modelOptions, type ModelOptions } from './model-options.js'

export interface CompileArgs extends ModelOptions {
  model: string
  profile: string
  out: string
  report: string
  calibration?: string
  profilesDir?: string
  json: boolean
}

function compileArgs(args: Args): CompileArgs {
  if (args.pos.length > 1) throw new UsageError(`unexpected argument ${args.pos[1]}`)
  const model = args.pos[0]
  if (!model) throw new UsageError('missing MODEL.onnx')
  const need = (flag: string) => {
    const v = args.str(flag)
    if (!v) throw new UsageError(`missing --${flag}`)
    return v
  }
  return {
    model,
    profile: need('profile'),
    out: need('out'),
    report: need('report'),
    ...modelOptions(args),
    calibration: args.str('calibration'),
    profilesDir: args.str('profiles-dir'),
    json: args.flag('json'),
  }
}

const compile = command({
  name: 'compile',
  summary: ['compile MODEL.onnx', 'compile one model for one profile, no hub needed (see compile --help)'],
  help: `edgefleet compile MODEL.onnx --profile ID|FILE.json --out OUT.onnx --report REPORT.json [model options]
         [--calibration DIR] [--profiles-dir DIR] [--json]
  --profile ID|FILE.json  the device profile: an id from the profiles folder, or a profile file
  --out OUT.onnx          where the build goes (written atomically: nothing on failure)
  --report REPORT.json    the validation report: precision, accuracy against the float model, latency, candidates
${MODEL_OPTIONS_HELP}
  --calibration DIR       .npy calibration tensors (a sub-folder or file-name prefix per input) for int8-static
  --profiles-dir DIR      profiles folder (default: the repository's firmware-profiles/)
  Exit codes: 0 built, 1 the build failed or the input is bad (the report's code on stderr), 2 usage.`,
  options: {
    ...MODEL_OPTIONS,
    calibration: { type: 'string' },
    profile: { type: 'string' },
    out: { type: 'string' },
    report: { type: 'string' },
    'profiles-dir': { type: 'string' },
  },
  async run({ args, out, err }) {
    const a = compileArgs(args)
    const { runCompile } = await import('../compiler/cli.js')
    return runCompile(a, { stdout: out, stderr: err })
  },
})

export const compileCommands: Command[] = [compile]
