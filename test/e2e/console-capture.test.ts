// The console's Capture view [EF-8.15] and the deploy form's hold [EF-8.16]
// in Debian's Chromium (playwright-core) against a real hub that honours
// maintenance windows: a bad selector shows its code, a policy with a privacy
// filter is created from the form and listed with the devices it matches, and
// deleted from the list; a plain deploy is held (window with its opening,
// conditions) and "deploy now" sends at once. The hub reads profiles made for
// the test (a window that never opens, one always open but asking for
// charging) so the outcome never depends on the hour it runs at; a rollout
// holds the same devices for the same reasons. Last, sign out forgets the
// token.
// Screenshots go to test-results/console/.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser, type Page } from 'playwright-core'
import { ROOT, api, startHub, type HubProc } from '../support/fleet.mjs'
import { batchModel } from '../support/rollout-models.mjs'

const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
const shots = join(ROOT, 'test-results', 'console')
const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-console-capture-'))
let hub: HubProc
let browser: Browser
let page: Page

/**
 * A profiles folder with two lab classes (gateway-rpi4 with another window) whose windows do not
 * depend on the time of day; only two, so a model version is built twice, not once per shipped profile.
 */
function labProfiles(): string {
  const dir = join(tmp, 'profiles')
  mkdirSync(dir)
  const source = readFileSync(join(ROOT, 'firmware-profiles', 'gateway-rpi4.json'), 'utf8')
  const variant = (id: string, maintenanceWindow: Record<string, unknown>) =>
    writeFileSync(join(dir, `${id}.json`), JSON.stringify({ ...JSON.parse(source), id, maintenanceWindow }))
  // 29 February: a window that opens once in four years.
  variant('lab-closed', { cron: '0 0 29 2 *', durationMinutes: 60, timezone: 'UTC' })
  // Open every minute, but only for a device that shows it is charging.
  variant('lab-charging', { cron: '* * * * *', durationMinutes: 60, timezone: 'UTC', conditions: ['charging'] })
  return dir
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true })
  hub = await startHub({ dataDir: join(tmp, 'hub'), windows: true, extraArgs: ['--profiles', labProfiles()] })
  for (const [id, site] of [
    ['n1', 'north'],
    ['n2', 'north'],
    ['s1', 'south'],
  ])
    await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile: 'lab-closed', tags: { site } })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
  await page.goto(hub.httpUrl + '/')
  await page.fill('#token', hub.token)
  await page.click('#signin button')
  await page.waitForSelector('#c-devices')
})

afterAll(async () => {
  await browser?.close()
  await hub?.stop()
  rmSync(tmp, { recursive: true, force: true })
})

describe('console: capture policies', () => {
  it('creates a policy with a privacy filter from the form, refuses a bad selector, deletes it', async () => {
    await page.click('nav a[href="#/capture"]')
    await page.waitForSelector('#capture-create')

    await page.fill('#capture-create input[name="selector"]', 'site=north')
    await page.click('#capture-create-btn')
    await page.waitForSelector('#create-error:has-text("EF_ERR_SELECTOR_INVALID")')
    await page.fill('#capture-create input[name="blank"]', 'image:CHW:0,0,1,1')
    await page.fill('#capture-create input[name="selector"]', 'tag=site=north')
    await page.click('#capture-create-btn')
    await page.waitForSelector('#create-error:has-text("blank region must be")')
    expect((await api(hub.httpUrl, 'GET', '/api/v1/capture-policies')).items).toEqual([])

    await page.fill('#capture-create input[name="name"]', 'north')
    await page.fill('#capture-create input[name="random"]', '0.2')
    await page.fill('#capture-create input[name="hash"]', 'user_id')
    await page.fill('#capture-create input[name="blank"]', 'image:NHWC:0,0,32,8')
    await page.click('#capture-create-btn')
    await page.waitForSelector('#capture-policies tr[data-policy]')
    const row = page.locator('#capture-policies tr[data-policy]')
    expect(await row.textContent()).toMatch(
      /north.*tag=site=north.*\(all\).*0\.20.*hash user_id; blank image 0,0 32×8; no audio\s*2/,
    )
    const [stored] = (await api(hub.httpUrl, 'GET', '/api/v1/capture-policies')).items
    expect(stored).toMatchObject({
      name: 'north',
      random: 0.2,
      maxBytesPerHour: 10_000_000,
      privacy: {
        hashInputs: ['user_id'],
        blankRegions: [{ input: 'image', layout: 'NHWC', x: 0, y: 0, width: 32, height: 8 }],
      },
    })
    await page.screenshot({ path: join(shots, '7-capture-policies.png'), fullPage: true })

    await page.click(`button[data-delete="${stored.id}"]`)
    await page.waitForSelector('#capture-policies tr[data-policy]', { state: 'detached' })
    expect((await api(hub.httpUrl, 'GET', '/api/v1/capture-policies')).items).toEqual([])
  })
})

describe('console: deployments held for windows and conditions [EF-8.16]', () => {
  const rowOf = (deployment: string, device: string) =>
    `table.deployment-devices[data-deployment="${deployment}"] tr[data-device="${device}"]`

  it('holds a plain deploy (window closed; conditions not shown) and sends one ticked "deploy now" at once', async () => {
    for (const [id, profile] of [
      ['w1', 'lab-closed'],
      ['k1', 'lab-charging'],
    ])
      await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile, tags: { site: 'lab' } })
    const q = new URLSearchParams({ name: 'clf', version: '1.0.0', options: JSON.stringify({ precision: 'fp32' }) })
    await api(hub.httpUrl, 'POST', `/api/v1/models?${q}`, await batchModel({ seed: 1 }))

    await page.click('nav a[href="#/deployments"]')
    await page.waitForSelector('#deploy select[name="ref"] option:has-text("clf@1.0.0")', { state: 'attached' })
    await page.selectOption('#deploy select[name="ref"]', 'clf@1.0.0')
    await page.fill('#deploy input[name="target"]', 'tag=site=lab')
    await page.click('#deploy-btn')
    await page.waitForSelector('#deployments tbody tr[data-deployment], #deploy-error:not(:empty)', { timeout: 90_000 })
    expect(await page.textContent('#deploy-error')).toBe('')
    const held = (await page.getAttribute('#deployments tbody tr[data-deployment]', 'data-deployment'))!
    // Held by the hub, not "pending (offline)": each says what it waits for.
    await page.waitForSelector(`${rowOf(held, 'w1')} .state.waiting_window`)
    // When it opens (in the week before a 29 February), else that no window comes within 8 days.
    expect(await page.textContent(`${rowOf(held, 'w1')} .state`)).toMatch(
      /^waiting_window \((no window within 8 days|opens .*29.*)\)$/,
    )
    expect(await page.textContent(rowOf(held, 'w1'))).toContain('outside the maintenance window of lab-closed')
    expect(await page.textContent(`${rowOf(held, 'k1')} .state`)).toBe('waiting_conditions')
    expect(await page.textContent(rowOf(held, 'k1'))).toContain('waiting for charging (lab-charging)')
    expect(await page.textContent('#deployments tbody tr:first-child')).toMatch(/0\/2 · 2 held/)
    await page.screenshot({ path: join(shots, '8-deployment-held.png'), fullPage: true })
    const progress = (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${held}`)).devices
    expect(Object.fromEntries(progress.map((d: { deviceId: string; state: string }) => [d.deviceId, d.state]))).toEqual(
      {
        w1: 'waiting_window',
        k1: 'waiting_conditions',
      },
    )

    // "Deploy now": sent at once (the device is offline, so it waits for it), and it supersedes the held one.
    await page.fill('#deploy input[name="target"]', 'device=w1')
    await page.check('#deploy input[name="now"]')
    await page.click('#deploy-btn')
    await page.waitForSelector(`#deployments tbody tr[data-deployment]:not([data-deployment="${held}"])`)
    const now = (await page.getAttribute('#deployments tbody tr[data-deployment]', 'data-deployment'))!
    await page.waitForSelector(`${rowOf(now, 'w1')} .state:has-text("pending (offline)")`)
    await page.waitForSelector(`${rowOf(held, 'w1')}.failed :text("EF_ERR_DEPLOY_SUPERSEDED")`)
    await page.screenshot({ path: join(shots, '8b-deployment-now.png'), fullPage: true })
    const sent = (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${now}`)).devices
    // Sent (a command id given), not held: the offline device gets it when it connects [EF-2.3.2].
    expect(sent).toEqual([expect.objectContaining({ deviceId: 'w1', state: 'sent', online: false })])
    const after = (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${held}`)).devices
    expect(after.find((d: { deviceId: string }) => d.deviceId === 'w1')).toMatchObject({
      state: 'failed',
      code: 'EF_ERR_DEPLOY_SUPERSEDED',
    })
  })

  it('refuses a TLS client certificate from the provisioning form on a hub without TLS', async () => {
    await page.click('nav a[href="#/provision"]')
    await page.waitForSelector('#provision')
    await page.fill('#provision input[name="id"]', 'certless')
    await page.check('#provision input[name="cert"]')
    await page.click('#provision-btn')
    await page.waitForSelector('#provision-error:has-text("EF_ERR_TLS_DISABLED")')
    expect(await page.locator('#provisioned').count()).toBe(0)
    const devices = (await api(hub.httpUrl, 'GET', '/api/v1/fleet/devices?q=certless')).items
    expect(devices).toEqual([])
  })
})

describe('console: a rollout holds devices for their profile window and its conditions [EF-8.4]', () => {
  it('shows them held, neither done nor failed, and the wave waits for them', async () => {
    await page.click('nav a[href="#/rollouts"]')
    await page.waitForSelector('#create')
    await page.selectOption('#create select[name="ref"]', 'clf@1.0.0')
    await page.fill('#create input[name="selector"]', 'tag=site=lab')
    await page.fill('#create input[name="waves"]', '100%')
    await page.fill('#create input[name="soak"]', '1')
    await page.click('#create-btn')
    await page.waitForSelector('#waves tr[data-wave="1"] .held:has-text("2 held")', { timeout: 30_000 })
    const wave = (await page.textContent('#waves tr[data-wave="1"]'))!
    expect(wave).toContain('0/2')
    expect(wave).toContain('waiting_window=1')
    // k1's window is open but its profile asks for charging, which a device never seen does not show.
    expect(wave).toContain('waiting_conditions=1')
    await page.screenshot({ path: join(shots, '8c-rollout-held.png'), fullPage: true })
    const id = new URL(page.url()).hash.replace('#/rollout/', '')
    const { items } = await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${id}/devices`)
    expect(Object.fromEntries(items.map((d: { deviceId: string; status: string }) => [d.deviceId, d.status]))).toEqual({
      w1: 'waiting_window',
      k1: 'waiting_conditions',
    })
    expect((await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${id}`)).rollout).toMatchObject({
      state: 'running',
      phase: 'deploy',
    })
    await page.click('#actions button[data-action="abort"]')
    await page.waitForSelector('#rollout-state:has-text("aborted")')
  })
})

describe('console: sign out', () => {
  it('forgets the token: the sign-in form shows, also after a reload', async () => {
    await page.click('#signout')
    await page.waitForSelector('#signin')
    // The test project has no DOM types: the page's sessionStorage is reached through globalThis.
    const stored = await page.evaluate(() =>
      Object.values((globalThis as unknown as { sessionStorage: Record<string, string> }).sessionStorage),
    )
    expect(stored).not.toContain(hub.token)
    await page.reload()
    await page.waitForSelector('#signin')
    expect(await page.locator('#nav').count()).toBe(0)
  })
})
