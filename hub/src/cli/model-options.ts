// The model options `model add` and `compile` share (--shape, --value,
// --output, --precision): one option set, one parser, so both commands
// accept and check them alike.
import { Precision } from '@edgefleet/shared'
import { UsageError, type Args, type OptionSet } from './command.js'

export const MODEL_OPTIONS = {
  shape: { type: 'string', multiple: true },
  value: { type: 'string', multiple: true },
  output: { type: 'string', multiple: true },
  precision: { type: 'string' },
} as const satisfies OptionSet

/** Help lines for MODEL_OPTIONS, indented like the commands' own. */
export const MODEL_OPTIONS_HELP = `  --shape INPUT=d,d,..  concrete shape for an input with symbolic dims (repeatable); needed when the model's
                        dims cannot be guessed (EF_ERR_MODEL_SHAPE_REQUIRED)
  --value INPUT=x       constant value for an input (e.g. a sample rate), used for validation and health checks (repeatable)
  --output NAME=KIND    what an output means: scores | logits | probability | regression | other (repeatable);
                        agents report confidence from it
  --precision P         auto (default) | ${Precision.anyOf.map((p) => p.const).join(' | ')}`

/** Output kinds of the manifest's semantics [EF-2.6.4]. */
const OUTPUT_KINDS = ['scores', 'logits', 'probability', 'regression', 'other'] as const
type OutputKind = (typeof OUTPUT_KINDS)[number]
const PRECISIONS = ['auto', ...Precision.anyOf.map((p) => p.const)] as const

export interface ModelOptions {
  inputShapes?: Record<string, number[]>
  inputValues?: Record<string, number>
  outputs?: Record<string, OutputKind>
  precision?: (typeof PRECISIONS)[number]
}

/** KEY=VALUE pairs of a repeatable option. */
export function keyValues(list: string[], flag: string): [string, string][] {
  return list.map((s) => {
    const i = s.indexOf('=')
    if (i <= 0) throw new UsageError(`${flag} must be KEY=VALUE, got ${JSON.stringify(s)}`)
    return [s.slice(0, i), s.slice(i + 1)]
  })
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** A decimal number, or a usage error naming the option (Number('1.5x') would be NaN, Number('') 0). */
export function parseNumber(text: string, what: string): number {
  const n = Number(text)
  if (!NUMBER.test(text.trim()) || !Number.isFinite(n))
    throw new UsageError(`${what} must be a number, got ${JSON.stringify(text)}`)
  return n
}

function parseShape(name: string, text: string): number[] {
  const dims = text.split(',').map((d) => Number(d))
  if (!dims.length || !text.split(',').every((d) => /^\d+$/.test(d.trim())) || dims.some((d) => d < 1))
    throw new UsageError(`--shape ${name}=${text}: dims must be whole numbers ≥ 1, e.g. ${name}=1,16000`)
  return dims
}

/** The model options given on the command line; undefined fields were not given. */
export function modelOptions(args: Args): ModelOptions {
  const options: ModelOptions = {}
  const shapes = keyValues(args.strs('shape'), '--shape')
  if (shapes.length) options.inputShapes = Object.fromEntries(shapes.map(([k, v]) => [k, parseShape(k, v)]))
  const values = keyValues(args.strs('value'), '--value')
  if (values.length)
    options.inputValues = Object.fromEntries(values.map(([k, v]) => [k, parseNumber(v, `--value ${k}`)]))
  const outputs = keyValues(args.strs('output'), '--output')
  for (const [name, kind] of outputs)
    if (!(OUTPUT_KINDS as readonly string[]).includes(kind))
      throw new UsageError(`--output ${name}=${kind}: KIND is one of ${OUTPUT_KINDS.join(', ')}`)
  if (outputs.length) options.outputs = Object.fromEntries(outputs) as Record<string, OutputKind>
  const precision = args.str('precision')
  if (precision !== undefined) {
    if (!(PRECISIONS as readonly string[]).includes(precision))
      throw new UsageError(`--precision must be one of ${PRECISIONS.join(', ')}, got ${JSON.stringify(precision)}`)
    options.precision = precision as ModelOptions['precision']
  }
  return options
}
