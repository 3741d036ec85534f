// The console's Capture view [EF-8.15] in Debian's Chromium (playwright-core)
// against a real hub: a bad selector shows its code, a policy with a privacy
// filter is created from the form and listed with the devices it matches, and
// deleted from the list. Screenshots go to test-results/console/.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser, type Page } from 'playwright-core'
import { ROOT, api, startHub, type HubProc } from '../support/fleet.mjs'

const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
const shots = join(ROOT, 'test-results', 'console')
const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-console-capture-'))
let hub: HubProc
let browser: Browser
let page: Page

beforeAll(async () => {
  mkdirSync(shots, { recursive: true })
  hub = await startHub({ dataDir: join(tmp, 'hub') })
  for (const [id, site] of [
    ['n1', 'north'],
    ['n2', 'north'],
    ['s1', 'south'],
  ])
    await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile: 'gateway-rpi4', tags: { site } })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
})

afterAll(async () => {
  await browser?.close()
  await hub?.stop()
  rmSync(tmp, { recursive: true, force: true })
})

describe('console: capture policies', () => {
  it('creates a policy with a privacy filter from the form, refuses a bad selector, deletes it', async () => {
    await page.goto(hub.httpUrl + '/')
    await page.fill('#token', hub.token)
    await page.click('#signin button')
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
