// Run parameters for the property-based (fast-check) fuzz suites. The unit
// suites run a fixed seed and a bounded number of cases, so a failure replays
// exactly; test/bench/fuzz.mjs reruns the same files with a random seed, many
// more cases and a time budget, through these environment variables:
//   EF_FUZZ_SEED   integer seed (default 20261129, fixed)
//   EF_FUZZ_SCALE  multiplies every property's case count (default 1)
//   EF_FUZZ_MS     wall-clock budget per property in ms (default: none)
// fast-check prints the seed and the shrunk counterexample (with its path) of
// a failing property; `seed` and `path` replay it.

import fc from 'fast-check'

const DEFAULT_SEED = 20261129

function envInt(name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n)) throw new RangeError(`${name}=${raw} is not a number`)
  return n
}

/**
 * fast-check parameters for one property: `runs` cases at the default scale.
 * Prints the seed so a failure in a long run is reproducible from the log.
 */
export function fuzzParams(name, runs, extra = {}) {
  const seed = envInt('EF_FUZZ_SEED', DEFAULT_SEED)
  const numRuns = Math.max(1, Math.round(runs * envInt('EF_FUZZ_SCALE', 1)))
  const budgetMs = envInt('EF_FUZZ_MS', 0)
  console.log(`[fuzz] ${name}: seed=${seed} numRuns=${numRuns}${budgetMs ? ` budgetMs=${budgetMs}` : ''}`)
  return {
    seed,
    numRuns,
    ...(budgetMs ? { interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false } : {}),
    ...extra,
  }
}

/** Runs `fn` and fails if it takes longer than `ms` (a synchronous reader cannot be interrupted, only caught). */
export function withinMs(ms, what, fn) {
  const t0 = performance.now()
  const out = fn()
  const took = performance.now() - t0
  if (took > ms) throw new Error(`${what} took ${took.toFixed(0)} ms (bound ${ms} ms)`)
  return out
}

/** Settles `p` or rejects after `ms` (a hang becomes a failing case, not a stuck suite). */
export function deadline(p, ms, what) {
  let timer
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
    }),
  ])
}

// ---------------------------------------------------------------------------
// Arbitraries shared by the suites: hostile JSON leaves, JSON text with tokens
// JSON.stringify cannot produce (1e999, -0, 30-digit integers, deep nesting),
// and byte-level mutations of real files.
/** A piece of JSON text spliced in verbatim by `jsonText`. */
export class Raw {
  constructor(text) {
    this.text = text
  }
}

const NASTY_STRINGS = [
  '',
  ' ',
  'NaN',
  'Infinity',
  '-Infinity',
  '-0',
  '1e999',
  'null',
  'undefined',
  'true',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  '../../../etc/passwd',
  '%00',
  '\u0000',
  '\ud800',
  '\uffff',
  '💥',
  'EF_ERR_INTERNAL',
  "'; DROP TABLE devices; --",
  '${7*7}',
  '<script>',
  'a'.repeat(65),
  '9'.repeat(400),
]
const NASTY_NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  2 ** 64,
  1e21,
  1e300,
  -1e300,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
  8.64e15,
  8.64e15 + 1,
]
const RAW_NUMBERS = ['1e999', '-1e999', '-0', '123456789012345678901234567890', '1e-400', '1E+2', '0.0000001', '-0.0']

/** Numbers at the edges (JSON.stringify turns NaN/Infinity into null; `Raw` tokens get past that). */
export const hostileNumber = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_NUMBERS) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 2, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom(...RAW_NUMBERS).map((t) => new Raw(t)) },
)

export const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 70_000 }).map((n) => 'x'.repeat(n)) },
)

/** Arrays or objects nested `depth` deep, as raw text (JSON.parse recursion, schema walkers). */
const deepNesting = fc
  .tuple(fc.integer({ min: 50, max: 20_000 }), fc.boolean())
  .map(
    ([depth, arr]) =>
      new Raw(arr ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
  )

/** Any JSON-ish value, hostile leaves included, a few levels deep. */
export const hostileValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileNumber,
    hostileString,
    fc.boolean(),
    fc.constant(null),
    deepNesting,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(hostileString, fc.constantFrom('__proto__', 'v', 'deviceId')), tie('value'), {
      maxKeys: 5,
    }),
  ),
})).value

/** JSON text of `v`, with `Raw` leaves written verbatim. */
export function jsonText(v) {
  if (v instanceof Raw) return v.text
  if (Array.isArray(v)) return `[${v.map(jsonText).join(',')}]`
  if (v && typeof v === 'object')
    return `{${Object.entries(v)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${JSON.stringify(k)}:${jsonText(x)}`)
      .join(',')}}`
  return JSON.stringify(v) ?? 'null'
}

/** Every key path of a JSON value (objects and arrays), for targeted mutation. */
function paths(v, prefix = [], out = []) {
  if (v && typeof v === 'object' && !(v instanceof Raw))
    for (const [k, x] of Object.entries(v)) {
      const p = [...prefix, Array.isArray(v) ? Number(k) : k]
      out.push(p)
      paths(x, p, out)
    }
  return out
}

/** A deep copy that keeps `Raw` leaves (structuredClone would turn them into plain objects). */
function clone(v) {
  if (v instanceof Raw || !v || typeof v !== 'object') return v
  if (Array.isArray(v)) return v.map(clone)
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]))
}

/** A copy of `msg` with the value at one of its paths (picked by `pick`) replaced, or deleted when `value` is undefined. */
export function mutate(msg, pick, value) {
  const copy = clone(msg)
  const all = paths(copy)
  if (all.length === 0) return copy
  const p = all[pick % all.length]
  let node = copy
  for (const k of p.slice(0, -1)) node = node[k]
  if (value === undefined) delete node[p.at(-1)]
  else node[p.at(-1)] = value
  return copy
}

/** Buffers of random bytes, random text, and random (possibly broken) JSON. */
export const junkPayload = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
  fc.string({ unit: 'binary', maxLength: 256 }).map((s) => Buffer.from(s)),
  hostileValue.map((v) => Buffer.from(jsonText(v))),
  fc.tuple(hostileValue, fc.nat()).map(([v, cut]) => {
    const t = jsonText(v)
    return Buffer.from(t.slice(0, cut % (t.length + 1)))
  }),
)

const mutation = fc.oneof(
  fc.record({ op: fc.constant('truncate'), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({
    op: fc.constant('flip'),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({
    op: fc.constant('overwrite'),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    op: fc.constant('insert'),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    op: fc.constant('delete'),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    len: fc.integer({ min: 1, max: 64 }),
  }),
)

function applyMutation(input, edit) {
  const at = Math.min(input.length, Math.floor(edit.at * input.length))
  switch (edit.op) {
    case 'truncate':
      return input.subarray(0, at)
    case 'flip': {
      const c = Buffer.from(input)
      if (c.length) c[Math.min(at, c.length - 1)] ^= 1 << edit.bit
      return c
    }
    case 'overwrite': {
      const c = Buffer.from(input)
      c.set(edit.bytes.subarray(0, Math.max(0, c.length - at)), at)
      return c
    }
    case 'insert':
      return Buffer.concat([input.subarray(0, at), edit.bytes, input.subarray(at)])
    default:
      return Buffer.concat([input.subarray(0, at), input.subarray(at + edit.len)])
  }
}

/**
 * A real file with 1 to `maxMutations` mutations applied (truncation, bit flips, overwrites, insertions,
 * deletions), placed within its first `within` bytes (default: anywhere).
 */
export function mutatedBytes(base, { maxMutations = 8, within = base.length } = {}) {
  const b = Buffer.from(base)
  const scale = b.length ? Math.min(1, within / b.length) : 1
  return fc
    .array(mutation, { minLength: 1, maxLength: maxMutations })
    .map((ms) => ms.reduce((acc, m) => applyMutation(acc, { ...m, at: m.at * scale }), b))
}
