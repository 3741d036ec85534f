// Agent configuration: defaults < file < env < flags, validated and frozen.
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { EdgeFleetError, generateSigningKeys } from '@edgefleet/shared'
import { defaultAgentOptions, resolveConfig } from '../src/config.js'
import { tempDir } from './fixtures/agent.js'

const KEY = generateSigningKeys().publicKey
const required = {
  hubUrl: 'mqtt://127.0.0.1:1883',
  deviceId: 'dev-1',
  secret: 's3cret',
  hubKey: KEY,
  profile: 'gateway-rpi4',
}

function configError(fn: () => unknown): EdgeFleetError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeFleetError)
    expect((err as EdgeFleetError).code).toBe('EF_ERR_CONFIG_INVALID')
    return err as EdgeFleetError
  }
  throw new Error('expected EF_ERR_CONFIG_INVALID')
}

describe('resolveConfig', () => {
  const tmp = tempDir()
  afterAll(() => tmp.cleanup())
  const file = (content: unknown, name = 'agent.json') => {
    const p = join(tmp.dir, name)
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
    return p
  }

  it('fills defaults around the required fields and freezes the result', () => {
    const c = resolveConfig({ flags: required })
    expect(c).toMatchObject({ ...required, apiPort: defaultAgentOptions.apiPort, fetchWindow: 32, network: 'unknown' })
    expect(c.dataDir).toBe(resolve(defaultAgentOptions.dataDir))
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('reads the reconnect back-off cap and the db size cap from env, and refuses a cap that would spin', () => {
    const c = resolveConfig({ flags: required, env: { EF_RECONNECT_MAX_MS: '2000', EF_MAX_DB_BYTES: '65536' } })
    expect(c.reconnectMaxMs).toBe(2000)
    expect(c.maxDbBytes).toBe(65536)
    expect(resolveConfig({ flags: required }).reconnectMaxMs).toBe(30_000)
    expect(configError(() => resolveConfig({ flags: { ...required, reconnectMaxMs: 10 } })).message).toContain(
      'reconnectMaxMs',
    )
  })

  it("takes a broker cluster's nodes as a list and names a bad entry [EF-4.12]", () => {
    const list = 'mqtt://127.0.0.1:4001,mqtt://127.0.0.1:4002'
    expect(resolveConfig({ flags: { ...required, hubUrl: list } }).hubUrl).toBe(list)
    expect(
      configError(() => resolveConfig({ flags: { ...required, hubUrl: 'mqtt://a:1,ftp://b:2' } })).message,
    ).toContain('ftp://b:2')
  })

  it('file < env < flags', () => {
    const configFile = file({
      ...required,
      deviceId: 'from-file',
      apiPort: 1111,
      fetchWindow: 7,
      profile: 'industrial-x86',
    })
    const env = { EF_DEVICE_ID: 'from-env', EF_API_PORT: '2222' }
    const c = resolveConfig({ file: configFile, env, flags: { deviceId: 'from-flag' } })
    expect(c.deviceId).toBe('from-flag')
    expect(c.apiPort).toBe(2222) // env over file
    expect(c.fetchWindow).toBe(7) // file over default
    expect(c.profile).toBe('industrial-x86')
    expect(resolveConfig({ file: configFile, env }).deviceId).toBe('from-env')
    expect(resolveConfig({ file: configFile }).deviceId).toBe('from-file')
    // An undefined flag does not erase a value from below.
    expect(resolveConfig({ file: configFile, flags: { deviceId: undefined } }).deviceId).toBe('from-file')
  })

  it('coerces numeric strings from env and flags', () => {
    const c = resolveConfig({
      env: { EF_API_PORT: '0' },
      flags: { ...required, maxBodyBytes: '1024', telemetryIntervalMs: '250' },
    })
    expect(c.apiPort).toBe(0)
    expect(c.maxBodyBytes).toBe(1024)
    expect(c.telemetryIntervalMs).toBe(250)
  })

  it.each([
    ['apiPort', 'eighty'],
    ['fetchWindow', '-1'],
    ['outboxMaxRows', '1.5'],
    ['downloadTimeoutMs', ''],
  ])('refuses a non-integer or negative %s=%j', (field, value) => {
    const e = configError(() => resolveConfig({ flags: { ...required, [field]: value } }))
    expect(e.message).toContain(`${field} must be a non-negative integer`)
  })

  it('lists every missing required field', () => {
    const e = configError(() => resolveConfig({ flags: { hubUrl: 'mqtt://x' } }))
    for (const k of ['deviceId', 'secret', 'hubKey', 'profile']) expect(e.message).toContain(`${k} is required`)
    expect(e.message).not.toContain('hubUrl is required')
    const empty = configError(() => resolveConfig({ flags: { ...required, secret: '' } }))
    expect(empty.message).toContain('secret is required')
  })

  it.each(['not-a-key', KEY.slice(1), `${KEY.slice(0, 42)}+`])('refuses a bad hubKey %j', (hubKey) => {
    expect(configError(() => resolveConfig({ flags: { ...required, hubKey } })).message).toContain('hubKey')
  })

  it('refuses a bad device id and network', () => {
    expect(configError(() => resolveConfig({ flags: { ...required, deviceId: 'a/b' } })).message).toContain('deviceId')
    expect(configError(() => resolveConfig({ flags: { ...required, network: 'satellite' } })).message).toContain(
      'network',
    )
  })

  it('runtime [EF-5.6]: auto by default, native or wasm from env or flags, anything else refused', () => {
    expect(resolveConfig({ flags: required }).runtime).toBe('auto')
    expect(resolveConfig({ flags: required, env: { EF_RUNTIME: 'wasm' } }).runtime).toBe('wasm')
    expect(resolveConfig({ flags: { ...required, runtime: 'native' } }).runtime).toBe('native')
    expect(configError(() => resolveConfig({ flags: { ...required, runtime: 'gpu' } })).message).toContain('runtime')
  })

  it('a config file that does not parse is EF_ERR_CONFIG_INVALID naming the file', () => {
    const p = file('{"hubUrl": ', 'broken.json')
    expect(configError(() => resolveConfig({ file: p, flags: required })).message).toContain(p)
    expect(
      configError(() => resolveConfig({ file: join(tmp.dir, 'missing.json'), flags: required })).message,
    ).toContain('missing.json')
  })

  describe('TLS files [EF-10.4]', () => {
    const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
    const tlsError = (fn: () => unknown) => {
      try {
        fn()
      } catch (err) {
        expect((err as EdgeFleetError).code).toBe('EF_ERR_TLS_FILE_INVALID')
        return (err as Error).message
      }
      throw new Error('expected EF_ERR_TLS_FILE_INVALID')
    }

    it('takes the CA from flags, EF_CA or the file, resolved to an absolute path', () => {
      const ca = file(PEM, 'ca.pem')
      expect(resolveConfig({ flags: { ...required, caFile: ca } }).caFile).toBe(resolve(ca))
      expect(resolveConfig({ env: { EF_CA: ca }, flags: required }).caFile).toBe(resolve(ca))
      expect(resolveConfig({ file: file({ ...required, caFile: ca }, 'tls.json') }).caFile).toBe(resolve(ca))
    })

    it('refuses a missing or non-PEM file, and a certificate without its key', () => {
      expect(tlsError(() => resolveConfig({ env: { EF_CA: join(tmp.dir, 'nope.pem') }, flags: required }))).toContain(
        'nope.pem',
      )
      const notPem = file('hello', 'not.pem')
      expect(tlsError(() => resolveConfig({ flags: { ...required, caFile: notPem } }))).toContain('not PEM')
      const cert = file(PEM, 'dev.pem')
      expect(tlsError(() => resolveConfig({ flags: { ...required, certFile: cert } }))).toContain('go together')
      expect(resolveConfig({ flags: { ...required, certFile: cert, keyFile: cert } }).keyFile).toBe(resolve(cert))
    })
  })
})
