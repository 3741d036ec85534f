// `edgefleet compile`: the compiler without a hub. Reads a model and a
// profile (id looked up in the profiles folder, or a JSON file), writes the
// build and its report atomically (temp file + rename, so a failure never
// leaves a half-written --out), shows progress on stderr.
import { readFile, writeFile, rename, rm, readdir } from 'node:fs/promises'
import { existsSync, statSync } from 'node:fs'
import { dirname, join, basename, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  EdgeFleetError,
  codeOf,
  profileCodec,
  profileProblems,
  type FirmwareProfile,
  type Precision,
} from '@edgefleet/shared'
import { compile } from './index.js'
import type { Progress } from './plan.js'

const USAGE = `usage: edgefleet compile MODEL.onnx --profile ID|FILE.json --out OUT.onnx --report REPORT.json
         [--precision auto|fp32|fp16|int8-dynamic|int8-weight|int8-static] [--calibration DIR]
         [--profiles-dir DIR] [--json]`

const PRECISIONS = ['auto', 'fp32', 'fp16', 'int8-dynamic', 'int8-weight', 'int8-static']

interface Args {
  model: string
  profile: string
  out: string
  report: string
  precision: 'auto' | Precision
  calibration?: string
  profilesDir?: string
  json: boolean
}

function parse(argv: string[]): Args {
  const a = argv[0] === 'compile' ? argv.slice(1) : argv
  const out: Partial<Args> & { json: boolean } = { json: false, precision: 'auto' }
  const value = (i: number, flag: string) => {
    const v = a[i + 1]
    if (v === undefined || v.startsWith('--')) throw new RangeError(`${flag} needs a value`)
    return v
  }
  for (let i = 0; i < a.length; i++) {
    const f = a[i]
    switch (f) {
      case '--profile':
        out.profile = value(i++, f)
        break
      case '--out':
        out.out = value(i++, f)
        break
      case '--report':
        out.report = value(i++, f)
        break
      case '--precision': {
        const p = value(i++, f)
        if (!PRECISIONS.includes(p)) throw new RangeError(`--precision must be one of ${PRECISIONS.join(', ')}`)
        out.precision = p as Args['precision']
        break
      }
      case '--calibration':
        out.calibration = value(i++, f)
        break
      case '--profiles-dir':
        out.profilesDir = value(i++, f)
        break
      case '--json':
        out.json = true
        break
      default:
        if (f.startsWith('--')) throw new RangeError(`unknown option ${f}`)
        if (out.model) throw new RangeError(`unexpected argument ${f}`)
        out.model = f
    }
  }
  for (const k of ['model', 'profile', 'out', 'report'] as const)
    if (!out[k]) throw new RangeError(`missing ${k === 'model' ? 'MODEL.onnx' : `--${k}`}`)
  return out as Args
}

/** firmware-profiles/ of the repository this package sits in: the first one found walking up from here. */
export function defaultProfilesDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'firmware-profiles')
    if (existsSync(candidate) && statSync(candidate).isDirectory()) return candidate
    dir = dirname(dir)
  }
  return undefined
}

function checkProfile(value: unknown, where: string): FirmwareProfile {
  let p: FirmwareProfile
  try {
    p = profileCodec.check(value)
  } catch (err) {
    throw new EdgeFleetError('EF_ERR_PROFILE_INVALID', `${where}: ${(err as Error).message}`)
  }
  const problems = profileProblems(p)
  if (problems.length) throw new EdgeFleetError('EF_ERR_PROFILE_INVALID', `${where}: ${problems.join('; ')}`)
  return p
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new EdgeFleetError('EF_ERR_PROFILE_INVALID', `${file}: ${(err as Error).message}`)
  }
}

/** A profile from a JSON file path, or by id from the profiles folder (file `<id>.json` or any file with that id). */
export async function loadProfile(ref: string, profilesDir = defaultProfilesDir()): Promise<FirmwareProfile> {
  if (ref.endsWith('.json') || ref.includes('/')) {
    if (!existsSync(ref)) throw new EdgeFleetError('EF_ERR_PROFILE_UNKNOWN', `no profile file ${ref}`)
    return checkProfile(await readJson(ref), ref)
  }
  if (!profilesDir || !existsSync(profilesDir))
    throw new EdgeFleetError('EF_ERR_PROFILE_UNKNOWN', `${ref}: no profiles folder (give --profiles-dir)`)
  const direct = join(profilesDir, `${ref}.json`)
  if (existsSync(direct)) return checkProfile(await readJson(direct), direct)
  for (const f of (await readdir(profilesDir)).filter((x) => x.endsWith('.json') && x !== 'profile.schema.json')) {
    const v = (await readJson(join(profilesDir, f)).catch(() => undefined)) as { id?: string } | undefined
    if (v?.id === ref) return checkProfile(v, join(profilesDir, f))
  }
  throw new EdgeFleetError('EF_ERR_PROFILE_UNKNOWN', `${ref} (looked in ${profilesDir})`)
}

/** Writes via a temp file in the same folder and renames, so readers never see a partial file. */
export async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(resolve(file)), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`)
  try {
    await writeFile(tmp, data)
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

function progressBar(stream: NodeJS.WriteStream): (p: Progress) => void {
  const tty = stream.isTTY
  let last = ''
  return (p) => {
    const width = 24
    const fill = p.total ? Math.round((p.done / p.total) * width) : 0
    const line =
      `${p.phase.padEnd(9)} ${p.precision ?? ''}`.padEnd(24) +
      ` [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${p.done}/${p.total}`
    if (line === last) return
    last = line
    stream.write(tty ? `\r${line}\x1b[K` : `${line}\n`)
    if (tty && p.phase === 'done') stream.write('\n')
  }
}

/** Runs the command; returns the exit code (0 ok, 1 failed build or bad input, 2 usage). */
export async function compileCli(
  argv: string[],
  io: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WriteStream } = {},
): Promise<number> {
  const stdout = io.stdout ?? process.stdout
  const stderr = io.stderr ?? process.stderr
  let args: Args
  try {
    args = parse(argv)
  } catch (err) {
    stderr.write(`edgefleet compile: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
  try {
    const profile = await loadProfile(args.profile, args.profilesDir ?? defaultProfilesDir())
    let model: Uint8Array
    try {
      model = new Uint8Array(await readFile(args.model))
    } catch (err) {
      throw new EdgeFleetError('EF_ERR_MODEL_INVALID', `cannot read ${args.model}: ${(err as Error).message}`)
    }
    const result = await compile(model, profile, {
      precision: args.precision,
      calibrationDir: args.calibration,
      onProgress: progressBar(stderr),
    })
    for (const w of (result.report.warnings as string[] | undefined) ?? []) stderr.write(`warning: ${w}\n`)
    await writeAtomic(args.report, JSON.stringify(result.report, null, 2) + '\n')
    await writeAtomic(args.out, result.bytes)
    const r = result.report
    if (args.json)
      stdout.write(
        JSON.stringify({
          ok: true,
          out: args.out,
          report: args.report,
          precision: r.precision,
          sizeBytes: r.sizeBytes,
          cosine: r.cosine,
        }) + '\n',
      )
    else
      stdout.write(
        `${args.out}: ${r.precision} for ${profile.id}, ${(r.sizeBytes / 2 ** 20).toFixed(2)} MiB (${((r.sizeRatio as number) * 100).toFixed(0)}% of float), cosine ${r.cosine.toFixed(4)}\n`,
      )
    return 0
  } catch (err) {
    const code = codeOf(err)
    if (args.json) stdout.write(JSON.stringify({ ok: false, code, message: (err as Error).message }) + '\n')
    stderr.write(`edgefleet compile: ${code}: ${(err as Error).message}\n`)
    return 1
  }
}
