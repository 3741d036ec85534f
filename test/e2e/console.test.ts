// The web console in Debian's Chromium driven by playwright-core, against a
// real hub and real agents: sign in with a token, see the fleet plotted and
// filter it, create a rollout targeting a tag, watch its waves progress, and
// steer rollouts with every button of their page (pause, resume, abort,
// approve, roll back, promote); a downgrade needs the rollback box.
// Screenshots go to test-results/console/ (git-ignored) as test artifacts.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser, type Page } from 'playwright-core'
import { ROOT, api, startFleet, startHub, waitFor, type FleetAgent, type HubProc } from '../support/fleet.mjs'
import { batchModel } from '../support/rollout-models.mjs'

export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
const shots = join(ROOT, 'test-results', 'console')
const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-console-'))
let hub: HubProc
let agents: FleetAgent[] = []
let browser: Browser
let page: Page
const cspViolations: string[] = []

async function register(version: string, seed: number) {
  const q = new URLSearchParams({ name: 'clf', version, options: JSON.stringify({ precision: 'fp32' }) })
  await api(hub.httpUrl, 'POST', `/api/v1/models?${q}`, await batchModel({ seed }))
}

/** Every device's live clf version, in device order. */
async function versionsOnFleet(): Promise<string[]> {
  const out: string[] = []
  for (const a of agents) {
    const { device } = await api(hub.httpUrl, 'GET', `/api/v1/devices/${a.id}`)
    out.push(device.models.find((m: { name: string }) => m.name === 'clf')?.version ?? 'none')
  }
  return out
}

/** Waits until no deployment is in flight, so a new rollout does not race an earlier one's deploys. */
async function settled() {
  await waitFor(
    async () =>
      (await api(hub.httpUrl, 'GET', '/api/v1/deployments?limit=50')).items.every((d: { done: boolean }) => d.done),
    { what: 'earlier deployments done', timeoutMs: 60_000 },
  )
}

/** Fills the rollout form for the canary ring: waves 1, 100 %, no gate minimum, windows off. */
async function openCreateForm(opts: { ref: string; soak: string; approval?: boolean }) {
  await page.click('nav a[href="#/rollouts"]')
  await page.waitForSelector('#create')
  await page.selectOption('#create select[name="ref"]', opts.ref)
  await page.fill('#create input[name="selector"]', 'tag=ring=canary')
  await page.fill('#create input[name="waves"]', '1,100%')
  await page.fill('#create input[name="soak"]', opts.soak)
  await page.fill('#create input[name="minRequests"]', '0')
  await page.uncheck('#create input[name="windows"]')
  if (opts.approval) await page.check('#create input[name="approval"]')
}

/** Creates a rollout from the form; returns its id once its page shows. */
async function createRollout(opts: { ref: string; soak: string; approval?: boolean }): Promise<string> {
  await openCreateForm(opts)
  await page.click('#create-btn')
  await page.waitForSelector('#waves')
  return new URL(page.url()).hash.replace('#/rollout/', '')
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true })
  hub = await startHub({ dataDir: join(tmp, 'hub') })
  agents = await startFleet(
    hub,
    ['c1', 'c2', 'c3'].map((id, i) => ({
      id,
      profile: i === 2 ? 'industrial-x86' : 'gateway-rpi4',
      tags: { ring: 'canary' },
    })),
    // Idle agents report their stats every second too, so the health charts have lines, not lone points.
    { tmp, telemetryMs: 500, healthMs: 1000 },
  )
  await waitFor(async () => (await api(hub.httpUrl, 'GET', '/api/v1/fleet/summary')).online === 3, {
    what: 'agents online',
  })
  await register('1.0.0', 1)
  const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
    model: 'clf',
    version: '1.0.0',
    target: 'tag=ring=canary',
  })
  await waitFor(
    async () => (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)).deployment.done,
    { timeoutMs: 60_000, what: 'deployment' },
  )
  await register('2.0.0', 2)
  // Some traffic, so the device and telemetry pages have something to plot.
  const { batchInput } = await import('../support/rollout-models.mjs')
  for (let i = 0; i < 30; i++)
    await Promise.all(
      agents.map((a) =>
        fetch(`${a.url}/v1/models/clf/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(batchInput(1, i)),
        }).then((r) => r.arrayBuffer()),
      ),
    )
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  // The console must work under its Content-Security-Policy: Chromium reports every blocked script or style here.
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text())
  })
})

afterAll(async () => {
  await browser?.close()
  await Promise.all(agents.map((a) => a.stop()))
  await hub?.stop()
  rmSync(tmp, { recursive: true, force: true })
})

describe('console in Chromium', () => {
  it('refuses a wrong token and signs in with the admin token; the fleet page plots devices by profile and version', async () => {
    await page.goto(hub.httpUrl + '/')
    await page.fill('#token', 'ef_wrong')
    await page.click('#signin button')
    await page.waitForSelector('#signin-error:has-text("EF_ERR_AUTH_TOKEN_INVALID")')
    await page.fill('#token', hub.token)
    await page.click('#signin button')
    await page.waitForSelector('#c-devices:has-text("3")')
    expect(await page.textContent('#who')).toContain('(admin)')
    expect(await page.locator('[data-chart="profiles"] svg rect').count()).toBeGreaterThanOrEqual(2)
    await page.waitForSelector('[data-chart="versions"] :text("clf@1.0.0")')
    expect(await page.locator('#devices tbody tr').count()).toBe(3)
    // Fleet-wide health distributions from the agents' own stats [EF-9.12]: every reporting device is in one bin.
    await page.waitForSelector('h2:has-text("Fleet health · 3 devices reporting")', { timeout: 20_000 })
    for (const m of ['rss', 'load', 'storage'])
      expect(await page.locator(`[data-chart="fleet-${m}"] svg rect`).count(), m).toBeGreaterThanOrEqual(1)
    await page.screenshot({ path: join(shots, '1-fleet.png'), fullPage: true })
    // The device filter (id, profile or tag) narrows the list in SQL; an empty filter shows all again.
    await page.fill('#filter input[name="q"]', 'industrial')
    await page.click('#filter button')
    await page.waitForSelector('#filter span:has-text("1 devices")')
    expect(await page.locator('#devices tbody tr').count()).toBe(1)
    expect(await page.getAttribute('#devices tbody tr', 'data-device')).toBe('c3')
    await page.fill('#filter input[name="q"]', '')
    await page.click('#filter button')
    await page.waitForSelector('#filter span:has-text("3 devices")')
  })

  it('shows a device with its events and telemetry charts, and models with their builds', async () => {
    await page.click('a[href="#/device/c1"]')
    // A line, or a lone point where the buckets around it are empty (gaps are not drawn across).
    await page.waitForSelector('[data-chart="device-clf-latency"] :is(polyline, circle)', {
      state: 'attached',
      timeout: 20_000,
    })
    expect(await page.locator('table tbody tr').count()).toBeGreaterThan(0)
    // Health [EF-9.12]: the real agent's version, conditions, provider and RSS, with charts over time.
    expect(await page.textContent('[data-health="agent"] b')).toMatch(/^\d+\.\d+\.\d+/)
    expect(await page.textContent('[data-health="providers"] b')).toMatch(/clf: \w+/)
    expect(await page.textContent('[data-health="rss"] b')).toMatch(/^\d+ MiB$/)
    expect(await page.textContent('[data-health="conditions"] b')).toContain('network')
    await page.waitForSelector('[data-chart="health-rss"] polyline', { state: 'attached', timeout: 20_000 })
    expect(await page.locator('[data-chart="health-load"] polyline').count()).toBeGreaterThan(0)
    await page.screenshot({ path: join(shots, '2-device.png'), fullPage: true })
    await page.click('nav a[href="#/models"]')
    await page.waitForSelector('h3:has-text("clf@2.0.0")')
    expect(await page.locator('td.good').count()).toBeGreaterThanOrEqual(2)
    await page.screenshot({ path: join(shots, '3-models.png'), fullPage: true })
    // Per-device download progress of the deployments [issue: distribution].
    await page.click('nav a[href="#/deployments"]')
    await page.waitForSelector('table.deployment-devices tr[data-device]')
    const rows = page.locator('table.deployment-devices tr[data-device]')
    expect(await rows.count()).toBeGreaterThan(0)
    expect(await rows.first().textContent()).toMatch(/activated.*[0-9.]+ [KM]iB \/ [0-9.]+ [KM]iB/)
    await page.screenshot({ path: join(shots, '3b-deployments.png'), fullPage: true })
    // The retraining loop of a model: lineage, drift, feed [EF-9].
    await page.click('nav a[href="#/retraining"]')
    await page.waitForSelector('#lineage tr[data-version="2.0.0"]')
    expect(await page.locator('#lineage tr[data-version]').count()).toBeGreaterThanOrEqual(2)
    await page.screenshot({ path: join(shots, '3c-retraining.png'), fullPage: true })
  })

  it('creates a rollout targeting a tag, shows its waves progressing and pauses it', async () => {
    await page.click('nav a[href="#/rollouts"]')
    await page.waitForSelector('#create')
    await page.selectOption('#create select[name="ref"]', 'clf@2.0.0')
    await page.fill('#create input[name="selector"]', 'tag=ring=canary')
    await page.fill('#create input[name="waves"]', '1,100%')
    await page.fill('#create input[name="soak"]', '6')
    await page.fill('#create input[name="minRequests"]', '0')
    await page.uncheck('#create input[name="windows"]')
    await page.click('#create-btn')
    await page.waitForSelector('#waves')
    await page.screenshot({ path: join(shots, '4-rollout-created.png'), fullPage: true })
    // Wave 1 (one device) completes, then wave 2 starts.
    await page.waitForSelector('#waves tr[data-wave="1"] :text("1/1")', { timeout: 60_000 })
    await page.waitForSelector('#rollout-wave:has-text("2/2")', { timeout: 60_000 })
    await page.screenshot({ path: join(shots, '5-rollout-wave2.png'), fullPage: true })
    await page.click('#actions button[data-action="pause"]')
    await page.waitForSelector('#rollout-state:has-text("paused")')
    await page.waitForSelector('#actions button[data-action="resume"]')
    expect(await page.locator('#decisions tbody tr td:has-text("pause")').count()).toBeGreaterThan(0)
    expect(await page.locator('[data-chart="gate-errors"] svg').count()).toBe(1)
    await page.screenshot({ path: join(shots, '6-rollout-paused.png'), fullPage: true })
    const list = await api(hub.httpUrl, 'GET', '/api/v1/rollouts')
    expect(list.items[0]).toMatchObject({
      state: 'paused',
      selectorText: 'tag=ring=canary',
      createdBy: 'admin (first start)',
    })
  })

  it('a viewer sees the rollout but no buttons', async () => {
    const { token } = await api(hub.httpUrl, 'POST', '/api/v1/tokens', { name: 'watcher', role: 'viewer' })
    const page = await browser.newPage()
    await page.goto(hub.httpUrl + '/')
    await page.fill('#token', token)
    await page.click('#signin button')
    await page.waitForSelector('#c-devices')
    await page.click('nav a[href="#/rollouts"]')
    await page.waitForSelector('#rollouts tbody tr')
    expect(await page.locator('#create').count()).toBe(0)
    await page.click('#rollouts tbody tr a')
    await page.waitForSelector('#waves')
    expect(await page.locator('#actions button').count()).toBe(0)
    await page.close()
  })

  it('resumes the paused rollout, then aborts it, from its page', async () => {
    await page.click('nav a[href="#/rollouts"]')
    await page.click('#rollouts tbody tr a')
    await page.waitForSelector('#actions button[data-action="resume"]')
    await page.click('#actions button[data-action="resume"]')
    await page.waitForSelector('#rollout-state:not(:has-text("paused"))')
    expect(await page.locator('#decisions tbody tr td:has-text("resume")').count()).toBeGreaterThan(0)
    await page.click('#actions button[data-action="abort"]')
    await page.waitForSelector('#rollout-state:has-text("aborted")')
    // A finished rollout offers no more actions.
    expect(await page.locator('#actions button').count()).toBe(0)
    await page.screenshot({ path: join(shots, '6b-rollout-aborted.png'), fullPage: true })
    expect((await api(hub.httpUrl, 'GET', '/api/v1/rollouts')).items[0].state).toBe('aborted')
  })

  it('approves the next wave of a rollout that waits for approval, then rolls it back from its page', async () => {
    await settled()
    await register('3.0.0', 3)
    const rollout = await createRollout({ ref: 'clf@3.0.0', soak: '1', approval: true })
    await page.waitForSelector('#rollout-state:has-text("awaiting_approval")', { timeout: 60_000 })
    expect(await page.textContent('#rollout-reason')).toContain('approve to start wave 2')
    await page.screenshot({ path: join(shots, '6c-rollout-awaiting-approval.png'), fullPage: true })
    await page.click('#actions button[data-action="approve"]')
    await page.waitForSelector('#rollout-wave:has-text("2/2")')
    const approved = await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${rollout}`)
    expect(approved.rollout.wave).toBe(1)
    expect(approved.decisions).toContainEqual(
      expect.objectContaining({ kind: 'action', decision: 'approve', actor: 'admin (first start)' }),
    )
    // Rolled back: every device the rollout reached gets its previous version in a signed rollback deploy.
    await page.click('#actions button[data-action="rollback"]')
    await page.waitForSelector('#rollout-state:has-text("rolled_back")', { timeout: 60_000 })
    expect(await page.locator('#actions button').count()).toBe(0)
    await page.screenshot({ path: join(shots, '6d-rollout-rolled-back.png'), fullPage: true })
    expect((await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${rollout}`)).rollout.state).toBe('rolled_back')
    await waitFor(async () => (await versionsOnFleet()).every((v) => v !== '3.0.0'), {
      what: 'no device left on 3.0.0',
      timeoutMs: 60_000,
    })
  })

  it('promotes a soaking wave, then the last one, and the rollout completes on every device', async () => {
    await settled()
    const rollout = await createRollout({ ref: 'clf@3.0.0', soak: '600' })
    // Wave 1 would soak for ten minutes: the operator promotes it.
    await page.waitForSelector('#rollout-wave:has-text("1/2 soak")', { timeout: 60_000 })
    await page.click('#actions button[data-action="promote"]')
    await page.waitForSelector('#rollout-wave:has-text("2/2 soak")', { timeout: 60_000 })
    await page.click('#actions button[data-action="promote"]')
    await page.waitForSelector('#rollout-state:has-text("completed")')
    await page.screenshot({ path: join(shots, '6e-rollout-promoted.png'), fullPage: true })
    const shown = await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${rollout}`)
    expect(shown.rollout.state).toBe('completed')
    const promotes = shown.decisions.filter((d: { decision: string }) => d.decision === 'promote')
    expect(promotes.map((d: { wave: number; actor: string }) => [d.wave, d.actor])).toEqual([
      [0, 'admin (first start)'],
      [1, 'admin (first start)'],
    ])
    // Every device's state (which the agent republishes after activating) shows 3.0.0.
    await waitFor(async () => (await versionsOnFleet()).every((v) => v === '3.0.0'), {
      what: 'every device on 3.0.0',
      timeoutMs: 30_000,
    })
  })

  it('refuses a rollout to an older version unless ticked as a rollback [EF-8.13]', async () => {
    const before = (await api(hub.httpUrl, 'GET', '/api/v1/rollouts')).items.length
    await openCreateForm({ ref: 'clf@2.0.0', soak: '600' })
    await page.click('#create-btn')
    await page.waitForSelector('#create-error:has-text("EF_ERR_ROLLOUT_DOWNGRADE")')
    expect((await api(hub.httpUrl, 'GET', '/api/v1/rollouts')).items).toHaveLength(before)
    await page.check('#create input[name="rollback"]')
    await page.click('#create-btn')
    await page.waitForSelector('#waves')
    const [made] = (await api(hub.httpUrl, 'GET', '/api/v1/rollouts')).items
    expect(made).toMatchObject({ version: '2.0.0', spec: expect.objectContaining({ rollback: true }) })
    await page.click('#actions button[data-action="abort"]')
    await page.waitForSelector('#rollout-state:has-text("aborted")')
  })

  it('ran every page above without a Content-Security-Policy violation', async () => {
    const res = await fetch(hub.httpUrl + '/')
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(cspViolations).toEqual([])
  })
})
