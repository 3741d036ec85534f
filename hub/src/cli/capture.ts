// `edgefleet capture create|update|delete` and `edgefleet capture list`:
// fleet capture policies [EF-8.15] with their device-side privacy filter
// [EF-2.9.5]. Flags map one to one onto the API's fields; the hub checks them.
import { command, UsageError, type Args, type Command } from './command.js'
import { table } from './format.js'

const POLICY_OPTIONS = {
  selector: { type: 'string' },
  model: { type: 'string' },
  name: { type: 'string' },
  random: { type: 'string' },
  'confidence-below': { type: 'string' },
  disagreement: { type: 'boolean' },
  'max-bytes-per-hour': { type: 'string' },
  'max-bytes-on-disk': { type: 'string' },
  drop: { type: 'string' },
  'drop-outputs': { type: 'string' },
  hash: { type: 'string' },
  blank: { type: 'string', multiple: true },
  'audio-inputs': { type: 'string' },
  'allow-audio': { type: 'boolean' },
} as const

const POLICY_HELP = `  --selector EXPR          devices, as for rollouts: profile=P, tag=k=v, region=R, device=ID, and/or/not
  --model NAME             the model it captures (default: every model without its own policy)
  --name NAME              a label for lists
  --random F               fraction captured at random, 0..1 (default 0)
  --confidence-below F     capture requests whose confidence is below F
  --disagreement           capture requests on which the shadow candidate disagreed
  --max-bytes-per-hour N   per-device cap per clock hour (default 10000000)
  --max-bytes-on-disk N    per-device cap on samples waiting in the queue (default 50000000)
privacy filter, run on the device before anything is stored or sent:
  --drop a,b               inputs left out of samples
  --drop-outputs a,b       outputs left out of samples (e.g. ones that echo an input)
  --hash a,b               inputs replaced by a keyed hash
  --blank IN:LAYOUT:X,Y,W,H  blank a rectangle of an image input (LAYOUT NCHW or NHWC); repeatable
  --audio-inputs a,b       inputs that carry audio (besides names saying audio, wav, pcm, speech, mic)
  --allow-audio            let audio inputs leave the device (default: they never do)`

const names = (s: string) => s.split(',').filter(Boolean)

function num(args: Args, flag: string, integer: boolean): number | undefined {
  const s = args.str(flag)
  if (s === undefined) return undefined
  const v = Number(s)
  if (s.trim() === '' || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v)))
    throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(s)}`)
  return v
}

/** `image:NCHW:0,0,64,32` → a region; the hub checks it against the model. */
function parseRegion(s: string): Record<string, unknown> {
  const m = /^(.+):(NCHW|NHWC):(\d+),(\d+),(\d+),(\d+)$/.exec(s)
  if (!m) throw new UsageError(`--blank must be INPUT:NCHW|NHWC:X,Y,WIDTH,HEIGHT, got ${JSON.stringify(s)}`)
  const [, input, layout, x, y, width, height] = m
  return { input, layout, x: Number(x), y: Number(y), width: Number(width), height: Number(height) }
}

/** The privacy object from the flags; undefined when none was given. */
function privacyOf(args: Args): Record<string, unknown> | undefined {
  const filter: Record<string, unknown> = {}
  const drop = args.str('drop')
  const hash = args.str('hash')
  const audio = args.str('audio-inputs')
  const dropOutputs = args.str('drop-outputs')
  if (dropOutputs !== undefined) filter.dropOutputs = names(dropOutputs)
  if (drop !== undefined) filter.dropInputs = names(drop)
  if (hash !== undefined) filter.hashInputs = names(hash)
  if (audio !== undefined) filter.audioInputs = names(audio)
  const blank = args.strs('blank')
  if (blank.length) filter.blankRegions = blank.map(parseRegion)
  if (args.flag('allow-audio')) filter.allowAudio = true
  return Object.keys(filter).length ? filter : undefined
}

/** The API body from the flags given (update sends only those). */
function bodyOf(args: Args): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    selector: args.str('selector'),
    model: args.str('model'),
    name: args.str('name'),
    random: num(args, 'random', false),
    confidenceBelow: num(args, 'confidence-below', false),
    disagreement: args.flag('disagreement') ? true : undefined,
    maxBytesPerHour: num(args, 'max-bytes-per-hour', true),
    maxBytesOnDisk: num(args, 'max-bytes-on-disk', true),
    privacy: privacyOf(args),
  }
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined))
}

interface PolicyOut {
  id: string
  name: string
  selectorText: string
  model: string | null
  random: number
  confidenceBelow?: number
  matched: number
  privacy?: Record<string, unknown>
}

const describe = (p: PolicyOut, sent: number) =>
  `capture policy ${p.id} (${p.name}): ${p.selectorText}, model ${p.model ?? '(all)'}, matches ${p.matched} device(s); sent to ${sent} online now, the others when they reconnect`

const captureCreate = command({
  name: 'capture create',
  summary: [
    'capture create --selector EXPR',
    'fleet capture policy with a privacy filter (capture list/update/delete)',
  ],
  help: `edgefleet capture create --selector EXPR [--model NAME] [options] [--json]\n${POLICY_HELP}`,
  options: POLICY_OPTIONS,
  async run({ args, hub, emit }) {
    if (!args.str('selector')) throw new UsageError('capture create needs --selector EXPR')
    const r = await hub.request<{ policy: PolicyOut; sent: number }>('POST', '/api/v1/capture-policies', bodyOf(args))
    emit(r, () => describe(r.policy, r.sent))
    return 0
  },
})

const captureUpdate = command({
  name: 'capture update',
  help: `edgefleet capture update ID [options] [--all-models] [--no-privacy] [--json]   (only the options given change)\n${POLICY_HELP}
  --all-models             apply to every model without its own policy (clears --model)
  --no-privacy             remove the privacy filter`,
  options: { ...POLICY_OPTIONS, 'all-models': { type: 'boolean' }, 'no-privacy': { type: 'boolean' } },
  async run({ args, hub, emit }) {
    const id = args.pos[0]
    if (!id) throw new UsageError('capture update needs ID')
    const body = bodyOf(args)
    if (args.flag('all-models')) body.model = null
    if (args.flag('no-privacy')) body.privacy = null
    if (Object.keys(body).length === 0) throw new UsageError('capture update needs at least one option to change')
    const r = await hub.request<{ policy: PolicyOut; sent: number }>(
      'PATCH',
      `/api/v1/capture-policies/${encodeURIComponent(id)}`,
      body,
    )
    emit(r, () => describe(r.policy, r.sent))
    return 0
  },
})

const captureList = command({
  name: 'capture list',
  aliases: ['capture policies'],
  help: `edgefleet capture list [--json]`,
  options: {},
  async run({ hub, emit }) {
    const r = await hub.request<{ items: PolicyOut[] }>('GET', '/api/v1/capture-policies')
    emit(r.items, () =>
      table(
        r.items.map((p) => ({
          ...p,
          model: p.model ?? '(all)',
          privacy: p.privacy ? Object.keys(p.privacy).join(',') : '',
        })),
        ['id', 'name', 'selectorText', 'model', 'random', 'confidenceBelow', 'matched', 'privacy'],
      ),
    )
    return 0
  },
})

const captureDelete = command({
  name: 'capture delete',
  help: `edgefleet capture delete ID [--json]   (withdraws it from the devices that had it)`,
  options: {},
  async run({ args, hub, emit }) {
    const id = args.pos[0]
    if (!id) throw new UsageError('capture delete needs ID')
    const r = await hub.request<{ id: string; sent: number }>(
      'DELETE',
      `/api/v1/capture-policies/${encodeURIComponent(id)}`,
    )
    emit(
      r,
      () => `capture policy ${id} deleted; withdrawn from ${r.sent} online device(s), the others when they reconnect`,
    )
    return 0
  },
})

export const captureCommands: Command[] = [captureCreate, captureList, captureUpdate, captureDelete]
