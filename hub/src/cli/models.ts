// `edgefleet model add|show`, `edgefleet models list`: the model registry over
// the HTTP API; `model add --canary` starts the intake rollout [EF-9.11].
import { readFileSync } from 'node:fs'
import { command, UsageError, type Args, type Command } from './command.js'
import { table } from './format.js'
import { MODEL_OPTIONS, MODEL_OPTIONS_HELP, modelOptions } from './model-options.js'
import { GATE_HELP, GATE_OPTIONS, gateFlags, parseDuration, parseWaves } from './rollouts.js'

/** MODEL@VERSION → its parts. */
export function splitRef(ref: string | undefined): { model: string; version: string } {
  const at = ref?.lastIndexOf('@') ?? -1
  if (!ref || at <= 0 || at === ref.length - 1) throw new UsageError('expected MODEL@VERSION')
  return { model: ref.slice(0, at), version: ref.slice(at + 1) }
}

/** The canary intake's rollout settings [EF-9.11]: the same flags as rollout create. */
function canaryRollout(args: Args): Record<string, unknown> {
  const rollout: Record<string, unknown> = {}
  const selector = args.str('selector')
  if (selector) rollout.selector = selector
  const waves = args.str('waves')
  if (waves) rollout.waves = parseWaves(waves)
  const soak = args.str('soak')
  if (soak) rollout.soakMs = parseDuration(soak)
  const gates = gateFlags(args.pick(Object.keys(GATE_OPTIONS)))
  if (Object.keys(gates).length) rollout.gates = gates
  if (args.flag('no-windows')) rollout.schedule = { maintenanceWindows: false }
  return rollout
}

interface AddResult {
  version: { model: string; version: string; size: number }
  builds: {
    profile: string
    status: string
    precision: string | null
    sizeBytes: number | null
    errorCode: string | null
  }[]
  intake?: { rollout: { id: string; state: string } | null; skipped: string | null }
}

function addText(added: AddResult): string {
  const intake = added.intake?.rollout
    ? `\ncanary rollout ${added.intake.rollout.id} started (${added.intake.rollout.state})`
    : added.intake?.skipped
      ? `\nno canary rollout: ${added.intake.skipped}`
      : ''
  return (
    `registered ${added.version.model}@${added.version.version} (${added.version.size} bytes)\n` +
    (added.builds.length
      ? table(added.builds, ['profile', 'status', 'precision', 'sizeBytes', 'errorCode'])
      : 'no devices provisioned yet: builds happen at first deploy') +
    intake
  )
}

/**
 * The meta file's text, compacted when it is JSON so more of it fits the URL;
 * anything else goes as it is and the hub says what is wrong (EF_ERR_MODEL_META_INVALID).
 */
function metaText(file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`--meta ${file}: ${(err as Error).message}`)
  }
  try {
    return JSON.stringify(JSON.parse(text))
  } catch {
    return text
  }
}

const modelAdd = command({
  name: 'model add',
  summary: ['model add FILE.onnx', 'register a model version and build it for the fleet'],
  help: `edgefleet model add FILE.onnx --name N --version V [model options] [--parent N@V] [--run-id ID] [--canary [rollout options]] [--json]
  --name N --version V  the model and the version to register
  --parent N@V          the registered version this one was retrained from (lineage); --run-id ID the training run
${MODEL_OPTIONS_HELP}
  --meta META.json      what the tensors mean, carried in the signed manifest: per input layout, normalize
                        {scale, mean, std}, units; per output labels, postprocess {activation: none|softmax|sigmoid,
                        threshold, topK}, units; requires {agent, ort} (minimum versions). See PROTOCOL.md EF-3.7
  --canary              intake policy: once every profile built, start a rollout to the devices serving the model;
                        --selector EXPR, --waves LIST, --soak DUR, --no-windows and the gate flags as for rollout create:
${GATE_HELP}`,
  options: {
    ...MODEL_OPTIONS,
    name: { type: 'string' },
    version: { type: 'string' },
    parent: { type: 'string' },
    'run-id': { type: 'string' },
    meta: { type: 'string' },
    canary: { type: 'boolean' },
    selector: { type: 'string' },
    waves: { type: 'string' },
    soak: { type: 'string' },
    'no-windows': { type: 'boolean' },
    ...GATE_OPTIONS,
  },
  async run({ args, hub, emit }) {
    const file = args.pos[0]
    const name = args.str('name')
    const version = args.str('version')
    if (!file || !name || !version) throw new UsageError('model add needs FILE.onnx, --name and --version')
    const options = modelOptions(args)
    const query = new URLSearchParams({ name, version })
    if (Object.keys(options).length) query.set('options', JSON.stringify(options))
    const metaFile = args.str('meta')
    if (metaFile) query.set('meta', metaText(metaFile))
    const parent = args.str('parent')
    if (parent) query.set('parent', parent)
    const runId = args.str('run-id')
    if (runId) query.set('runId', runId)
    if (args.flag('canary')) {
      query.set('policy', 'canary')
      const rollout = canaryRollout(args)
      if (Object.keys(rollout).length) query.set('rollout', JSON.stringify(rollout))
    }
    const bytes = readFileSync(file)
    const r = await hub.request<AddResult>('POST', `/api/v1/models?${query}`, bytes, {
      contentType: 'application/octet-stream',
    })
    emit(r, () => addText(r))
    return 0
  },
})

const modelsList = command({
  name: 'models list',
  aliases: ['model list'],
  summary: ['models list', 'list models and versions'],
  help: `edgefleet models list [--json]`,
  options: {},
  async run({ hub, emit }) {
    const r = await hub.request<{ items: { name: string; versions: string[] }[] }>('GET', '/api/v1/models')
    emit(r.items, () =>
      table(
        r.items.map((m) => ({ name: m.name, versions: m.versions.join(', ') })),
        ['name', 'versions'],
      ),
    )
    return 0
  },
})

const modelShow = command({
  name: 'model show',
  summary: ['model show N@V', 'a version with its builds and validation reports'],
  help: `edgefleet model show N@V [--json]`,
  options: {},
  async run({ args, hub, emit }) {
    const { model, version } = splitRef(args.pos[0])
    const r = await hub.request<{ builds: Record<string, unknown>[] }>(
      'GET',
      `/api/v1/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}`,
    )
    emit(r, () => table(r.builds, ['profile', 'status', 'precision', 'sizeBytes', 'errorCode']))
    return 0
  },
})

export const modelCommands: Command[] = [modelAdd, modelsList, modelShow]
