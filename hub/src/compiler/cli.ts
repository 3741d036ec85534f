// `edgefleet compile`: the compiler without a hub. Reads a model and a
// profile (id looked up in the profiles folder, or a JSON file), writes the
// build and its report atomically (temp file + rename, so a failure never
// leaves a half-written --out), shows progress on stderr. The command and its
// options are declared in cli/compile.ts (shared with `model add`).
import { readFile, writeFile, rename, rm, readdir } from 'node:fs/promises'
import { existsSync, statSync } from 'node:fs'
import { dirname, join, basename, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EdgeFleetError, codeOf, profileCodec, profileProblems, type FirmwareProfile } from '@edgefleet/shared'
import { runCommandLine } from '../cli/command.js'
import { compileCommands, type CompileArgs } from '../cli/compile.js'
import { compile, type CompileResult } from './index.js'
import type { Progress } from './report.js'

/** firmware-profiles/ of the repository this package sits in: the first one found walking up from here. */
function defaultProfilesDir(): string | undefined {
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
async function loadProfile(ref: string, profilesDir = defaultProfilesDir()): Promise<FirmwareProfile> {
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
async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(resolve(file)), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`)
  try {
    await writeFile(tmp, data)
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/** Any writable stream; a terminal (isTTY) gets one line redrawn in place. */
type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean }

function progressBar(stream: ProgressStream): (p: Progress) => void {
  const tty = stream.isTTY
  let last = ''
  return (step) => {
    const width = 24
    const fill = step.total ? Math.round((step.done / step.total) * width) : 0
    const line =
      `${step.phase.padEnd(9)} ${step.precision ?? ''}`.padEnd(24) +
      ` [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${step.done}/${step.total}`
    if (line === last) return
    last = line
    stream.write(tty ? `\r${line}\x1b[K` : `${line}\n`)
    if (tty && step.phase === 'done') stream.write('\n')
  }
}

/** `edgefleet compile ARGS…` on its own (argv may start with 'compile'); returns the exit code. */
export async function compileCli(
  argv: string[],
  io: { stdout?: NodeJS.WritableStream; stderr?: ProgressStream } = {},
): Promise<number> {
  const args = argv[0] === 'compile' ? argv.slice(1) : argv
  return runCommandLine(compileCommands, ['compile', ...args], io.stdout, io.stderr)
}

/** Output meanings as the manifest would carry them [EF-2.6.4]; a name the model lacks is EF_ERR_MODEL_INVALID. */
function semantics(
  outputs: CompileArgs['outputs'],
  result: CompileResult,
): { name: string; kind: string }[] | undefined {
  if (!outputs) return undefined
  const names = result.outputs.map((o) => o.name)
  const unknown = Object.keys(outputs).filter((n) => !names.includes(n))
  if (unknown.length)
    throw new EdgeFleetError(
      'EF_ERR_MODEL_INVALID',
      `--output names ${unknown.map((n) => JSON.stringify(n)).join(', ')}; the model's outputs are ${names.map((n) => JSON.stringify(n)).join(', ')}`,
    )
  return names.filter((n) => outputs[n] !== undefined).map((name) => ({ name, kind: outputs[name] }))
}

async function readModel(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file))
  } catch (err) {
    throw new EdgeFleetError('EF_ERR_MODEL_INVALID', `cannot read ${file}: ${(err as Error).message}`)
  }
}

/** Compiles as `args` says; returns the exit code (0 ok, 1 failed build or bad input). */
export async function runCompile(
  args: CompileArgs,
  io: { stdout: NodeJS.WritableStream; stderr: ProgressStream },
): Promise<number> {
  const { stdout, stderr } = io
  try {
    const profile = await loadProfile(args.profile, args.profilesDir ?? defaultProfilesDir())
    const model = await readModel(args.model)
    const result = await compile(model, profile, {
      precision: args.precision,
      inputShapes: args.inputShapes,
      inputValues: args.inputValues,
      calibrationDir: args.calibration,
      onProgress: progressBar(stderr),
    })
    const meaning = semantics(args.outputs, result)
    if (meaning) result.report.semantics = meaning
    for (const w of (result.report.warnings as string[] | undefined) ?? []) stderr.write(`warning: ${w}\n`)
    await writeAtomic(args.report, JSON.stringify(result.report, null, 2) + '\n')
    await writeAtomic(args.out, result.bytes)
    const buildReport = result.report
    if (args.json)
      stdout.write(
        JSON.stringify({
          ok: true,
          out: args.out,
          report: args.report,
          precision: buildReport.precision,
          sizeBytes: buildReport.sizeBytes,
          cosine: buildReport.cosine,
        }) + '\n',
      )
    else
      stdout.write(
        `${args.out}: ${buildReport.precision} for ${profile.id}, ${(buildReport.sizeBytes / 2 ** 20).toFixed(2)} MiB (${((buildReport.sizeRatio as number) * 100).toFixed(0)}% of float), cosine ${buildReport.cosine.toFixed(4)}\n`,
      )
    return 0
  } catch (err) {
    const code = codeOf(err)
    if (args.json) stdout.write(JSON.stringify({ ok: false, code, message: (err as Error).message }) + '\n')
    stderr.write(`edgefleet compile: ${code}: ${(err as Error).message}\n`)
    return 1
  }
}
