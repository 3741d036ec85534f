// The console as an operator's only tool, in Debian's Chromium
// (playwright-core) against a real hub and a real agent: provision a device
// and start its agent from the command line the page shows, upload a model
// and read its build report, deploy (activated green, a downgrade the agent
// refuses red, a device never online "pending (offline)"), act on the device
// (roll back, shadow, capture), read the retraining and telemetry pages, and
// manage tokens. Screenshots go to test-results/console/ (git-ignored).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser, type Page } from 'playwright-core'
import { ROOT, api, startAgent, startHub, waitFor, type AgentProc, type HubProc } from '../support/fleet.mjs'
import { batchInput, batchModel } from '../support/rollout-models.mjs'

const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
const shots = join(ROOT, 'test-results', 'console')
const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-console-operate-'))
let hub: HubProc
let agent: AgentProc | undefined
let browser: Browser
let page: Page
const cspViolations: string[] = []

const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true })
const modelOn = async (id: string) =>
  (await api(hub.httpUrl, 'GET', `/api/v1/devices/${id}`)).device.models.map(
    (m: { name: string; version: string }) => `${m.name}@${m.version}`,
  )
async function infer(n: number, seed = 0) {
  for (let i = 0; i < n; i++)
    await fetch(`http://127.0.0.1:${agent!.apiPort}/v1/models/clf/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(batchInput(1, seed + i)),
    }).then((r) => r.arrayBuffer())
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true })
  hub = await startHub({ dataDir: join(tmp, 'hub') })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text())
  })
  await page.goto(hub.httpUrl + '/')
  await page.fill('#token', hub.token)
  await page.click('#signin button')
  await page.waitForSelector('#c-devices')
})

afterAll(async () => {
  await browser?.close()
  await agent?.stop()
  await hub?.stop()
  rmSync(tmp, { recursive: true, force: true })
})

describe('console: running the fleet without the CLI', () => {
  it('provisions a device, and the agent started from the command line it shows comes online', async () => {
    await page.click('nav a[href="#/provision"]')
    await page.waitForSelector('#provision')
    await page.fill('#provision input[name="id"]', 'lab-1')
    await page.fill('#provision input[name="tags"]', 'site=lab, ring')
    await page.click('#provision-btn')
    await page.waitForSelector('#provision-error:has-text("tag \\"ring\\" must be key=value")')
    await page.fill('#provision input[name="tags"]', 'site=lab')
    await page.selectOption('#provision select[name="profile"]', 'gateway-rpi4')
    await page.click('#provision-btn')
    const command = (await page.waitForSelector('#agent-command')).textContent()
    const args = (await command)!.trim().split(/\s+/)
    expect(args[0]).toBe('edgefleet-agent')
    const arg = (name: string) => {
      const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`))
      return args[i].includes('=') ? args[i].slice(name.length + 3) : args[i + 1]
    }
    expect(arg('hub')).toBe(hub.mqttUrl)
    expect(arg('hub-key')).toBe(hub.publicKey)
    await shot('10-provisioned')
    // The same id again is refused with its code; a second device is provisioned and never started.
    await page.fill('#provision input[name="id"]', 'lab-1')
    await page.click('#provision-btn')
    await page.waitForSelector('#provision-error:has-text("EF_ERR_DEVICE_EXISTS")')
    await page.fill('#provision input[name="id"]', 'lab-offline')
    await page.fill('#provision input[name="tags"]', 'site=lab')
    await page.click('#provision-btn')
    await page.waitForSelector('#provisioned h3:has-text("lab-offline")')

    agent = await startAgent({
      mqttUrl: arg('hub'),
      deviceId: arg('device-id'),
      secret: arg('secret'),
      hubKey: arg('hub-key'),
      profile: arg('profile'),
      dataDir: join(tmp, 'lab-1'),
      telemetryMs: 500,
      extraArgs: ['--health-ms', '1000'],
    })
    await page.click('nav a[href="#/fleet"]')
    await page.waitForSelector('#devices tr[data-device="lab-1"] td.on', { timeout: 20_000 })
    expect(await page.textContent('#devices tr[data-device="lab-offline"] td.off')).toBe('offline')
  })

  it('uploads a model from the form and shows its build report with accuracy and latency', async () => {
    await page.click('nav a[href="#/models"]')
    await page.waitForSelector('#upload')
    const bytes = Buffer.from(await batchModel({ seed: 1 }))
    await page.setInputFiles('#upload input[name="file"]', {
      name: 'clf.onnx',
      mimeType: 'application/octet-stream',
      buffer: bytes,
    })
    await page.fill('#upload input[name="name"]', 'clf')
    await page.fill('#upload input[name="version"]', '1.0.0')
    await page.selectOption('#upload select[name="precision"]', 'fp32')
    await page.click('#upload-btn')
    await page.waitForSelector('#upload-report', { timeout: 120_000 })
    const built = page.locator('#upload-report tr[data-profile="gateway-rpi4"] td')
    expect(await built.nth(1).textContent()).toBe('ok')
    expect(await built.nth(2).textContent()).toBe('fp32')
    // Accuracy against the float model (fp32: exact) and a latency estimate in ms.
    expect(Number(await built.nth(4).textContent())).toBeGreaterThan(0.99)
    expect(await built.nth(7).textContent()).toMatch(/^[0-9.]+ ms/)
    // A second upload of the same version is refused with its code, nothing registered twice.
    await page.click('#upload-btn')
    await page.waitForSelector('#upload-error:has-text("EF_ERR_")', { timeout: 60_000 })
    // 2.0.0 trained from 1.0.0: the models page shows the lineage.
    const q = new URLSearchParams({ name: 'clf', version: '2.0.0', parent: 'clf@1.0.0' })
    await api(hub.httpUrl, 'POST', `/api/v1/models?${q}`, await batchModel({ seed: 2 }))
    await page.waitForSelector('.version[data-version="clf@2.0.0"] .lineage:has-text("trained from: clf@1.0.0")')
    await shot('11-models-upload')
  })

  it('deploys: activated in green, a device never online pending (offline), a refused downgrade in red', async () => {
    await page.click('nav a[href="#/deployments"]')
    await page.waitForSelector('#deploy')
    await page.selectOption('#deploy select[name="ref"]', 'clf@2.0.0')
    await page.fill('#deploy input[name="target"]', 'tag=site=lab')
    await page.click('#deploy-btn')
    const lab = 'table.deployment-devices tr[data-device="lab-1"]'
    await page.waitForSelector(`${lab} .state.activated`, { timeout: 60_000 })
    // Bytes moved by the device over the build's size.
    expect(await page.textContent(lab)).toMatch(/activated.*[0-9.]+ [KM]iB \/ [0-9.]+ [KM]iB/)
    expect(await page.textContent('table.deployment-devices tr[data-device="lab-offline"]')).toContain(
      'pending (offline)',
    )
    // The list above the table is refreshed on its own poll: wait for it to count the activation too.
    await page.waitForSelector('#deployments tbody tr:first-child:has-text("1/2")', { timeout: 30_000 })
    await shot('12-deployment-offline')

    // An older version without "rollback": the agent refuses it as a downgrade.
    await page.selectOption('#deploy select[name="ref"]', 'clf@1.0.0')
    await page.fill('#deploy input[name="target"]', 'device=lab-1')
    await page.click('#deploy-btn')
    const refused = 'table.deployment-devices tr.failed[data-device="lab-1"]'
    await page.waitForSelector(refused, { timeout: 60_000 })
    expect(await page.textContent(refused)).toMatch(/rejected.*EF_ERR_DOWNGRADE_REFUSED/)
    const row = page.locator('#deployments tbody tr').first()
    expect(await row.getAttribute('class')).toBe('failed')
    expect(await row.textContent()).toMatch(/0\/1 · 1 failed/)
    // Not a green bar: the red part is full, the green part empty.
    expect(await row.locator('.bar i.ok').getAttribute('style')).toContain('width: 0%')
    expect(await row.locator('.bar i.failed').getAttribute('style')).toContain('width: 100%')
    await shot('13-deployment-rejected')
    expect(await modelOn('lab-1')).toEqual(['clf@2.0.0'])
  })

  it('acts on the device: rolls it back, shadows a candidate, sets its capture policy', async () => {
    await page.goto(`${hub.httpUrl}/#/device/lab-1`)
    await page.waitForSelector('#rollback-form')
    expect(await page.textContent('[data-health="agent"] b')).toMatch(/^\d+\.\d+\.\d+/)
    await page.selectOption('#rollback-form select[name="ref"]', 'clf@1.0.0')
    await page.click('#rollback-form button')
    await page.waitForSelector('#rollback-result:has-text("rollback to clf@1.0.0: deployment")')
    await waitFor(async () => (await modelOn('lab-1'))[0] === 'clf@1.0.0', { what: 'rolled back', timeoutMs: 60_000 })

    await page.selectOption('#shadow-form select[name="ref"]', 'clf@2.0.0')
    await page.fill('#shadow-form input[name="fraction"]', '1')
    await page.click('#shadow-form button')
    await page.waitForSelector('#shadow-result:has-text("shadow clf@2.0.0 sent")')
    // The agent's answer lands in the device's event log on the page.
    await page.waitForSelector('#events td:has-text("shadowing")', { timeout: 30_000 })

    await page.fill('#capture-form input[name="random"]', '1')
    await page.click('#capture-form button')
    await page.waitForSelector('#capture-result:has-text("capture policy sent")')
    await page.waitForSelector('#events td:has-text("1 policy")', { timeout: 30_000 })
    await infer(20)
    // Shadow comparisons and captured samples reach the hub from the real agent.
    await waitFor(
      async () =>
        (await api(hub.httpUrl, 'GET', '/api/v1/shadow?model=clf')).items.some(
          (r: { candidate: string; runs: number }) => r.candidate === '2.0.0' && r.runs > 0,
        ),
      { what: 'shadow comparisons', timeoutMs: 30_000 },
    )
    await waitFor(async () => (await api(hub.httpUrl, 'GET', '/api/v1/samples?model=clf')).items.length > 0, {
      what: 'captured samples',
      timeoutMs: 30_000,
    })
    // Per-model charts draw the traffic (a line, or a lone point where the neighbouring buckets are empty).
    await page.waitForSelector('[data-chart="device-clf-latency"] :is(polyline, circle)', {
      state: 'attached',
      timeout: 20_000,
    })
    await shot('14-device-actions')
    // A pause in traffic longer than the gap allowance (1.5 buckets of 10 s) splits the line: the
    // 1.0.0 p50 series then has two runs (each a polyline, or a circle for a lone bucket), not one.
    await new Promise((r) => setTimeout(r, 32_000))
    await infer(10, 100)
    const p50Runs = '[data-chart="device-clf-latency"] [data-series="1.0.0 p50"]'
    await waitFor(async () => (await page.locator(p50Runs).count()) >= 2, {
      what: 'a gap in the line',
      timeoutMs: 30_000,
    })
    await shot('14b-device-chart-gap')
  })

  it('shows the retraining loop with lineage, drift status and feed times, and the telemetry page', async () => {
    await page.click('nav a[href="#/retraining"]')
    await page.waitForSelector('#lineage tr[data-version="2.0.0"]')
    expect(await page.textContent('#lineage tr[data-version="2.0.0"] td:nth-child(2)')).toBe('clf@1.0.0')
    // Drift rows say their status in words and when they were evaluated (never a bare dash).
    for (const cell of await page.locator('#drift tbody tr td:nth-child(7)').allTextContents())
      expect(cell).toMatch(/\d{1,2}:\d{2}:\d{2}/)
    for (const cell of await page.locator('#drift tbody tr td:nth-child(6)').allTextContents())
      expect(['no baseline yet', 'drifting', 'stable']).toContain(cell)
    for (const cell of await page.locator('#feed tbody tr td:nth-child(4)').allTextContents())
      expect(cell).toMatch(/\d{1,2}:\d{2}:\d{2}/)
    await shot('15-retraining')
    await page.click('nav a[href="#/telemetry"]')
    await page.waitForSelector('[data-chart="fleet-latency"] :is(polyline, circle)', {
      state: 'attached',
      timeout: 20_000,
    })
    await shot('16-telemetry')
  })

  it('creates a viewer token shown once, signs in with it, revokes it', async () => {
    await page.click('nav a[href="#/tokens"]')
    await page.waitForSelector('#token-create')
    await page.fill('#token-create input[name="name"]', 'night-shift')
    await page.selectOption('#token-create select[name="role"]', 'viewer')
    await page.fill('#token-create input[name="days"]', '1')
    await page.click('#token-create-btn')
    const token = (await (await page.waitForSelector('#token-plaintext')).textContent())!
    const row = page.locator('#tokens tr[data-name="night-shift"]')
    await row.waitFor()
    expect(await row.textContent()).toMatch(/night-shift.*viewer.*active/)
    await shot('17-tokens')

    const viewer = await browser.newPage()
    await viewer.goto(hub.httpUrl + '/')
    await viewer.fill('#token', token)
    await viewer.click('#signin button')
    await viewer.waitForSelector('#who:has-text("night-shift (viewer)")')
    // A viewer gets no forms that change the fleet.
    await viewer.click('nav a[href="#/deployments"]')
    await viewer.waitForSelector('#deployments')
    expect(await viewer.locator('#deploy').count()).toBe(0)
    // Provisioning hands out device secrets: admins only (POST /api/v1/devices).
    await viewer.click('nav a[href="#/provision"]')
    await viewer.waitForSelector('main p:has-text("Provisioning needs an admin token.")')
    expect(await viewer.locator('#provision').count()).toBe(0)
    await viewer.close()

    await row.locator('button[data-revoke]').click()
    await page.waitForSelector('#tokens tr[data-name="night-shift"] td.bad:has-text("revoked")')
    const again = await browser.newPage()
    await again.goto(hub.httpUrl + '/')
    await again.fill('#token', token)
    await again.click('#signin button')
    await again.waitForSelector('#signin-error:has-text("EF_ERR_AUTH_TOKEN")')
    await again.close()
  })

  it('ran every page above without a Content-Security-Policy violation', () => {
    expect(cspViolations).toEqual([])
  })
})
