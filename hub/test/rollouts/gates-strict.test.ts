// Gate values are strict [EF-8.5, issue 11.6]: every gate takes a number in its
// range or `off`, through the CLI (exit 2 before any request), the API (400
// EF_ERR_GATES_INVALID, no coercion) and the console's rollout form (Chromium);
// `off` is stored and read back as null and the gate is then really off.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'
import { main } from '../../src/cli/edgefleet.js'
import { sink } from '../fixtures/cli.js'
import { emptyConfidenceCounts, emptyLatencyCounts } from '@edgefleet/shared'
import { judge, type GateInput } from '../../src/rollouts/gates.js'
import type { CohortPart, CohortStats } from '../../src/store/index.js'
import type { Gates } from '../../src/rollouts/spec.js'
import { startTestHub, type TestHub } from '../fixtures/hub.js'
import { registerVersions } from '../fixtures/rollouts.js'

const CHROMIUM = '/usr/bin/chromium'

/** Each gate flag: its gate, a valid value, one out of range. */
const GATES = [
  { flag: 'max-error-rate-delta', key: 'maxErrorRateDelta', valid: 0.05, outOfRange: '1.5' },
  { flag: 'max-p95-ratio', key: 'maxP95Ratio', valid: 2.5, outOfRange: '0.5' },
  { flag: 'min-agreement', key: 'minShadowAgreement', valid: 0.9, outOfRange: '1.2' },
  { flag: 'max-confidence-psi', key: 'maxConfidencePsi', valid: 0.4, outOfRange: '101' },
] as const

/** Telemetry of one device window: `requests` with `errors`, every latency in bucket `latencyBin`, every answer in `confidenceBin`. */
function part(
  deviceId: string,
  requests: number,
  errors: number,
  latencyBin: number,
  confidenceBin: number,
): CohortPart {
  const latency = emptyLatencyCounts()
  latency[latencyBin] = requests
  const confidence = emptyConfidenceCounts()
  confidence[confidenceBin] = requests
  return { deviceId, ts: 0, requests, errors, latency, confidence }
}

function cohortOf(parts: CohortPart[]): CohortStats {
  const latency = emptyLatencyCounts()
  const confidence = emptyConfidenceCounts()
  for (const p of parts) {
    p.latency.forEach((c, i) => (latency[i] += c))
    p.confidence.forEach((c, i) => (confidence[i] += c))
  }
  const sum = (k: 'requests' | 'errors') => parts.reduce((a, p) => a + p[k], 0)
  return { devices: 1, requests: sum('requests'), errors: sum('errors'), latency, confidence, parts }
}

/** Telemetry that fails every gate at its default: half errors, 10× slower, far less confident, 10 % shadow agreement. */
const BAD: GateInput = {
  traffic: {
    cohort: cohortOf(Array.from({ length: 10 }, (_, i) => part(`c${i}`, 100, 50, 10, 2))),
    baseline: cohortOf(Array.from({ length: 10 }, (_, i) => part(`b${i}`, 100, 0, 7, 8))),
    concurrent: true,
  },
  shadow: { runs: 1000, agree: 100 },
  failedDevices: 0,
}

function failedGates(g: Gates): string[] {
  return judge(BAD, g, { needRequests: true, needShadow: true, waves: 3 }).failed.map((f) => f.gate)
}

let testHub: TestHub
const auth = () => ({ authorization: `Bearer ${testHub.hub.adminToken}` })

async function cli(argv: string[]) {
  const out = sink()
  const err = sink()
  const code = await main(
    [...argv, '--hub', testHub.hub.httpUrl, '--token', testHub.hub.adminToken!],
    out.stream,
    err.stream,
  )
  return { code, out: out.text(), err: err.text() }
}

async function post(gates: Record<string, unknown>) {
  return testHub.hub.api.inject({
    method: 'POST',
    url: '/api/v1/rollouts',
    headers: auth(),
    payload: { model: 'm', version: '1.0.0', selector: 'tag=ring=beta', gates },
  })
}

/** The stored gates of a rollout, read back over the API; the rollout is aborted so the next can start. */
async function storedGates(id: string): Promise<Gates> {
  const res = await testHub.hub.api.inject({ method: 'GET', url: `/api/v1/rollouts/${id}`, headers: auth() })
  await testHub.hub.api.inject({ method: 'POST', url: `/api/v1/rollouts/${id}/abort`, headers: auth(), payload: {} })
  return res.json<{ rollout: { spec: { gates: Gates } } }>().rollout.spec.gates
}

const rolloutCount = () => testHub.hub.store.rollouts.count()

beforeAll(async () => {
  testHub = await startTestHub({ auth: true })
  for (const id of ['g1', 'g2']) {
    const res = await testHub.hub.api.inject({
      method: 'POST',
      url: '/api/v1/devices',
      payload: { id, profile: 'gateway-rpi4', tags: { ring: 'beta' } },
      headers: auth(),
    })
    if (res.statusCode !== 201) throw new Error(res.body)
  }
  await registerVersions(testHub, 'm', ['1.0.0'])
})
afterAll(() => testHub?.close())

describe.each(GATES)('--$flag through the CLI', ({ flag, key, valid, outOfRange }) => {
  const create = (value: string) =>
    cli(['rollout', 'create', 'm@1.0.0', '--selector', 'tag=ring=beta', `--${flag}`, value, '--json'])

  it.each(['1.5x', '', 'of', 'NaN', '0x10'])('typo %j → exit 2 naming the flag, nothing created', async (typo) => {
    const before = rolloutCount()
    const r = await create(typo)
    expect(r.code).toBe(2)
    expect(r.err).toContain(`--${flag} must be`)
    expect(rolloutCount()).toBe(before)
  })

  it('out of range → exit 2', async () => {
    const r = await create(outOfRange)
    expect(r.code).toBe(2)
    expect(r.err).toContain(`--${flag} must be in [`)
  })

  it('off → stored and read back as null, and the gate is off', async () => {
    const r = await create('off')
    expect(r.code, r.err).toBe(0)
    const gates = await storedGates(JSON.parse(r.out).rollout.id)
    expect(gates[key]).toBeNull()
    expect(failedGates(gates)).not.toContain(key)
    // The same values do fail the gate when it is on: the check above could fail.
    expect(failedGates({ ...gates, [key]: valid })).toContain(key)
  })

  it('a number in range → stored as that number', async () => {
    const r = await create(String(valid))
    expect(r.code, r.err).toBe(0)
    expect((await storedGates(JSON.parse(r.out).rollout.id))[key]).toBe(valid)
  })

  it('model add --canary refuses the same typo before reading the file or calling the hub', async () => {
    const result = await cli([
      'model',
      'add',
      'no-such.onnx',
      '--name',
      'm',
      '--version',
      '9.0.0',
      '--canary',
      `--${flag}`,
      '1.5x',
    ])
    expect(result.code).toBe(2)
    expect(result.err).toContain(`--${flag} must be`)
  })
})

describe('--min-requests through the CLI', () => {
  it.each(['off', '2.5', '-1', 'ten'])('%j → exit 2 (a count; 0 means no minimum)', async (v) => {
    // --flag=value: parseArgs itself refuses `--min-requests -1` as ambiguous (also exit 2), before our check.
    const r = await cli(['rollout', 'create', 'm@1.0.0', '--selector', 'tag=ring=beta', `--min-requests=${v}`])
    expect(r.code).toBe(2)
    expect(r.err).toContain('--min-requests must be a whole number ≥ 0')
  })
  it('0 → stored as 0', async () => {
    const result = await cli([
      'rollout',
      'create',
      'm@1.0.0',
      '--selector',
      'tag=ring=beta',
      '--min-requests',
      '0',
      '--json',
    ])
    expect(result.code, result.err).toBe(0)
    expect((await storedGates(JSON.parse(result.out).rollout.id)).minRequests).toBe(0)
  })
})

describe.each(GATES)('gates.$key through the API', ({ key, valid, outOfRange }) => {
  it.each(['1.5x', '2', true, {}, [1]])('%j → 400 EF_ERR_GATES_INVALID, nothing created', async (v) => {
    const before = rolloutCount()
    const res = await post({ [key]: v })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('EF_ERR_GATES_INVALID')
    expect(res.json().error.message).toContain(key)
    expect(rolloutCount()).toBe(before)
  })

  it('out of range → 400 EF_ERR_GATES_INVALID', async () => {
    const res = await post({ [key]: Number(outOfRange) })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('EF_ERR_GATES_INVALID')
  })

  it('null (off) → stored and read back as null, not 0', async () => {
    const res = await post({ [key]: null })
    expect(res.statusCode, res.body).toBe(201)
    const gates = await storedGates(res.json().rollout.id)
    expect(gates[key]).toBeNull()
    expect(failedGates(gates)).not.toContain(key)
  })

  it('a number → stored as that number', async () => {
    const res = await post({ [key]: valid })
    expect(res.statusCode, res.body).toBe(201)
    expect((await storedGates(res.json().rollout.id))[key]).toBe(valid)
  })
})

describe('gates without an off state through the API', () => {
  it.each([
    ['minRequests', null],
    ['minRequests', 2.5],
    ['maxFailedDevices', null],
    ['baselineMs', '3600000'],
    ['p95FloorMs', -1],
    ['confidence', null],
    ['confidence', 1],
    ['confidence', '0.99'],
  ])('%s = %j → 400 EF_ERR_GATES_INVALID', async (key, v) => {
    const res = await post({ [key]: v })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('EF_ERR_GATES_INVALID')
  })

  it('a canary intake with a bad gate is refused before the version is registered', async () => {
    const q = new URLSearchParams({
      name: 'm',
      version: '9.9.9',
      policy: 'canary',
      rollout: JSON.stringify({ gates: { maxP95Ratio: '1.5x' } }),
    })
    const res = await testHub.hub.api.inject({
      method: 'POST',
      url: `/api/v1/models?${q}`,
      headers: { ...auth(), 'content-type': 'application/octet-stream' },
      payload: Buffer.from('not read'),
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('EF_ERR_GATES_INVALID')
    expect(testHub.hub.store.registry.getVersion('m', '9.9.9')).toBeUndefined()
  })
})

describe.skipIf(!existsSync(CHROMIUM))('the console rollout form (Chromium)', () => {
  let browser: Browser
  let page: Page
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      headless: true,
    })
    page = await browser.newPage()
    await page.goto(testHub.hub.httpUrl + '/')
    await page.fill('#token', testHub.hub.adminToken!)
    await page.click('#signin button')
    await page.waitForSelector('nav a[href="#/rollouts"]')
  })
  afterAll(() => browser?.close())

  /** Fills the form with one gate set to `value` and submits; returns the error shown, or the created rollout's id. */
  async function submit(key: string, value: string): Promise<{ error: string } | { id: string }> {
    // A fresh document each time (the token stays in sessionStorage): no stale form or error text.
    await page.goto('about:blank')
    await page.goto(testHub.hub.httpUrl + '/#/rollouts')
    await page.waitForSelector('#create')
    await page.fill('#create input[name="selector"]', 'tag=ring=beta')
    await page.fill(`#create input[name="${key}"]`, value)
    await page.click('#create-btn')
    // One evaluation reads the outcome, so a later re-render cannot change what the test sees.
    const outcome = await page.waitForFunction(() => {
      if (location.hash.startsWith('#/rollout/')) return { id: decodeURIComponent(location.hash.slice(10)) }
      const error = document.querySelector('#create-error')?.textContent
      return error ? { error } : null
    })
    return (await outcome.jsonValue()) as { error: string } | { id: string }
  }

  it.each(GATES)(
    '$key: typo and out of range refused with the code; off → null; a number → that number',
    async (gate) => {
      const before = rolloutCount()
      expect(await submit(gate.key, '1.5x')).toEqual({ error: expect.stringContaining('EF_ERR_GATES_INVALID') })
      expect(await submit(gate.key, gate.outOfRange)).toEqual({
        error: expect.stringContaining('EF_ERR_GATES_INVALID'),
      })
      expect(rolloutCount()).toBe(before)
      const off = await submit(gate.key, 'off')
      expect(off).toHaveProperty('id')
      const offGates = await storedGates((off as { id: string }).id)
      expect(offGates[gate.key]).toBeNull()
      expect(failedGates(offGates)).not.toContain(gate.key)
      const num = await submit(gate.key, String(gate.valid))
      expect((await storedGates((num as { id: string }).id))[gate.key]).toBe(gate.valid)
    },
  )

  it('min requests: a typo is refused with the code, not sent as NaN → null → 0', async () => {
    const before = rolloutCount()
    expect(await submit('minRequests', 'ten')).toEqual({ error: expect.stringContaining('EF_ERR_GATES_INVALID') })
    expect(rolloutCount()).toBe(before)
  })
})
