// The profile files are data both hub and agent read [EF-5]: every one must
// decode with the shared codec, pass the semantic checks, be named after its
// id, and the committed JSON Schema must be exactly what the generator makes
// of the TypeBox schema today (CONVENTIONS: generated files fail when they drift).
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
// firmware-profiles is not a workspace package, so the bare specifier
// '@edgefleet/shared' has no node_modules link from here; the built package is
// imported by path instead (run `npx tsc -b shared` first).
import {
  EdgeFleetError,
  FirmwareProfile,
  profileCodec,
  profileProblems,
  type FirmwareProfile as Profile,
} from '../../shared/dist/index.js'
import { renderProfileSchema } from '../../scripts/gen-profile-schema.mjs'

const dir = fileURLToPath(new URL('../', import.meta.url))
const SCHEMA_FILE = 'profile.schema.json'
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json') && f !== SCHEMA_FILE)
  .sort()

function load(file: string): { text: string; profile: Profile } {
  const text = readFileSync(dir + file, 'utf8')
  return { text, profile: profileCodec.decode(text) }
}

/** Decode + semantic checks, the way hub and agent load a profile. */
function problemsOf(value: unknown): string[] {
  let p: Profile
  try {
    p = profileCodec.check(value)
  } catch (err) {
    return [`${(err as EdgeFleetError).code}: ${(err as Error).message}`]
  }
  return profileProblems(p)
}

const REQUIRED_CLASSES = [
  'vehicle-arm64-gpu',
  'vehicle-x86-ecu',
  'phone-android-arm64',
  'gateway-rpi4',
  'gateway-armv7-small',
  'industrial-x86',
]

describe('profile.schema.json', () => {
  it('is exactly what scripts/gen-profile-schema.mjs generates from shared FirmwareProfile', () => {
    const committed = readFileSync(dir + SCHEMA_FILE, 'utf8')
    const regenerated = renderProfileSchema(FirmwareProfile)
    // On failure: npx tsc -b shared && node scripts/gen-profile-schema.mjs
    expect(committed).toBe(regenerated)
  })

  it('is a JSON Schema for an object with the profile fields', () => {
    const schema = JSON.parse(readFileSync(dir + SCHEMA_FILE, 'utf8')) as {
      type: string
      required: string[]
      properties: Record<string, unknown>
      additionalProperties: boolean
    }
    expect(schema.type).toBe('object')
    expect(schema.additionalProperties).toBe(false)
    expect(schema.required).toEqual(
      expect.arrayContaining(['id', 'arch', 'executionProviders', 'precisions', 'opset', 'maintenanceWindow']),
    )
    expect(Object.keys(schema.properties)).toContain('$schema')
  })
})

describe('profile files', () => {
  it('there are at least 7, including every required device class', () => {
    expect(files.length).toBeGreaterThanOrEqual(7)
    for (const id of REQUIRED_CLASSES) expect(files).toContain(`${id}.json`)
  })

  it.each(files)('%s decodes and has no semantic problems', (file) => {
    const { profile } = load(file)
    expect(profileProblems(profile)).toEqual([])
    expect(profile.$schema).toBe(`./${SCHEMA_FILE}`)
  })

  it.each(files)('%s is named after its id (short kebab-case)', (file) => {
    const { profile } = load(file)
    expect(file).toBe(`${profile.id}.json`)
    expect(profile.id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/)
    expect(profile.id.length).toBeLessThanOrEqual(32)
  })

  it('ids and names are unique', () => {
    const profiles = files.map((f) => load(f).profile)
    expect(new Set(profiles.map((p) => p.id)).size).toBe(profiles.length)
    expect(new Set(profiles.map((p) => p.name)).size).toBe(profiles.length)
  })

  it('files are 2-space JSON with a trailing newline', () => {
    for (const file of files) {
      const { text } = load(file)
      expect(text, file).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`)
    }
  })

  it('device classes carry the traits their names promise', () => {
    const byId = new Map(files.map((f) => [load(f).profile.id, load(f).profile]))
    const get = (id: string) => byId.get(id)!
    expect(get('vehicle-arm64-gpu')).toMatchObject({ arch: 'arm64', precisions: expect.arrayContaining(['fp16']) })
    expect(get('vehicle-arm64-gpu').precisions[0]).toBe('fp16')
    expect(get('vehicle-arm64-gpu').executionProviders).toEqual(expect.arrayContaining(['cuda', 'tensorrt', 'cpu']))
    expect(get('vehicle-x86-ecu').arch).toBe('x86_64')
    expect(get('vehicle-x86-ecu').precisions[0]).toMatch(/^int8-/)
    expect(get('phone-android-arm64')).toMatchObject({ arch: 'arm64', ramMb: 6144 })
    expect(get('phone-android-arm64').precisions[0]).toMatch(/^int8-/)
    expect(get('phone-android-arm64').executionProviders).toEqual(expect.arrayContaining(['nnapi', 'xnnpack']))
    expect(get('gateway-rpi4')).toMatchObject({ arch: 'arm64', ramMb: 4096 })
    expect(get('gateway-armv7-small')).toMatchObject({ arch: 'armv7', ramMb: 1024, storageBudgetMb: 256 })
    expect(get('industrial-x86').arch).toBe('x86_64')
    expect(get('industrial-x86').precisions).toContain('fp32')
  })
})

describe('broken profiles are rejected', () => {
  const good = (): Record<string, unknown> =>
    JSON.parse(readFileSync(dir + 'gateway-rpi4.json', 'utf8')) as Record<string, unknown>

  it('the baseline used below is valid (so each rejection is due to its one change)', () => {
    expect(problemsOf(good())).toEqual([])
  })

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each mutation reaches into nested members of an untyped JSON document
  const cases: [string, (p: Record<string, any>) => void, RegExp][] = [
    ['missing field', (p) => delete p.ramMb, /EF_ERR_MSG_SCHEMA/],
    ['unknown field', (p) => (p.gpuCount = 1), /EF_ERR_MSG_SCHEMA/],
    ['unknown arch', (p) => (p.arch = 'riscv64'), /EF_ERR_MSG_SCHEMA/],
    ['unknown execution provider', (p) => (p.executionProviders = ['directml', 'cpu']), /EF_ERR_MSG_SCHEMA/],
    ['unknown precision', (p) => (p.precisions = ['int4']), /EF_ERR_MSG_SCHEMA/],
    ['no precision', (p) => (p.precisions = []), /EF_ERR_MSG_SCHEMA/],
    ['bad id', (p) => (p.id = '-rpi4/../x'), /EF_ERR_MSG_SCHEMA/],
    ['fractional cores', (p) => (p.cores = 2.5), /EF_ERR_MSG_SCHEMA/],
    ['zero latency budget', (p) => (p.latencyBudgetMs = 0), /EF_ERR_MSG_SCHEMA/],
    ['four-field cron', (p) => (p.maintenanceWindow.cron = '0 2 * *'), /EF_ERR_MSG_SCHEMA/],
    ['opset min > max', (p) => (p.opset = { min: 18, max: 13 }), /opset\.min > opset\.max/],
    ['no cpu execution provider', (p) => (p.executionProviders = ['xnnpack']), /include 'cpu'/],
    ['cpu not last', (p) => (p.executionProviders = ['cpu', 'xnnpack']), /last execution provider/],
    ['threads > cores', (p) => (p.threads = 8), /threads > cores/],
    ['repeated precision', (p) => (p.precisions = ['fp32', 'fp32']), /precisions repeat/],
    ['storage budget beyond reason', (p) => (p.storageBudgetMb = 4096 * 65), /implausibly large/],
    ['unknown time zone', (p) => (p.maintenanceWindow.timezone = 'Mars/Olympus_Mons'), /IANA time zone/],
  ]

  it.each(cases)('%s', (_label, mutate, expected) => {
    const p = good()
    mutate(p)
    const problems = problemsOf(p)
    expect(problems.length).toBeGreaterThan(0)
    expect(problems.join('; ')).toMatch(expected)
  })

  it('decode reports non-JSON and oversized files with their codes', () => {
    expect(() => profileCodec.decode('{"id": "x",')).toThrow(expect.objectContaining({ code: 'EF_ERR_MSG_JSON' }))
    const huge = JSON.stringify({ ...good(), description: 'x'.repeat(70 * 1024) })
    expect(() => profileCodec.decode(huge)).toThrow(expect.objectContaining({ code: 'EF_ERR_MSG_TOO_LARGE' }))
  })
})
