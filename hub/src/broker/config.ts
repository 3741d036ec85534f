// The embedded broker's limits and quotas as configured [EF-1.7]: partial
// overrides of defaultBrokerLimits / defaultDeviceQuota, checked once at start
// (from HubOptions.broker or the EF_BROKER environment variable as JSON).
import { EdgeFleetError } from '@edgefleet/shared'
import { defaultBrokerLimits, type BrokerLimitOptions } from './limits.js'
import { defaultDeviceQuota, type DeviceQuotaOptions } from './quota.js'

export interface BrokerConfig {
  limits?: Partial<BrokerLimitOptions>
  quota?: Partial<DeviceQuotaOptions>
}

function checkSection(name: string, given: unknown, defaults: Record<string, unknown>): void {
  if (given === undefined) return
  if (typeof given !== 'object' || given === null || Array.isArray(given))
    throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', `broker.${name} must be an object`)
  for (const [key, value] of Object.entries(given)) {
    if (!(key in defaults))
      throw new EdgeFleetError(
        'EF_ERR_CONFIG_INVALID',
        `unknown broker.${name} setting ${JSON.stringify(key)}; known: ${Object.keys(defaults).join(', ')}`,
      )
    const ok =
      typeof defaults[key] === 'boolean'
        ? typeof value === 'boolean'
        : typeof value === 'number' && Number.isFinite(value) && value >= 0
    if (!ok)
      throw new EdgeFleetError(
        'EF_ERR_CONFIG_INVALID',
        `broker.${name}.${key} must be ${typeof defaults[key] === 'boolean' ? 'true or false' : 'a non-negative number'}, got ${JSON.stringify(value)}`,
      )
  }
}

/** Checks a broker configuration; throws EF_ERR_CONFIG_INVALID naming the bad setting. */
export function checkBrokerConfig(config: unknown): BrokerConfig {
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', 'broker configuration must be an object {"limits":…,"quota":…}')
  const settings = config as Record<string, unknown>
  for (const key of Object.keys(settings))
    if (key !== 'limits' && key !== 'quota')
      throw new EdgeFleetError(
        'EF_ERR_CONFIG_INVALID',
        `unknown broker setting ${JSON.stringify(key)}; known: limits, quota`,
      )
  checkSection('limits', settings.limits, defaultBrokerLimits)
  checkSection('quota', settings.quota, defaultDeviceQuota)
  const q = { ...defaultDeviceQuota, ...(settings.quota as Partial<DeviceQuotaOptions> | undefined) }
  if (q.messagesPerSec === 0 || q.bytesPerSec === 0)
    throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', 'broker.quota rates must be above 0')
  return settings
}

/** EF_BROKER: JSON of BrokerConfig, e.g. {"limits":{"maxConnectionsPerAddress":16,"loopbackExempt":false}}. */
export function brokerConfigFromEnv(raw = process.env.EF_BROKER): BrokerConfig | undefined {
  if (!raw) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', 'EF_BROKER is not JSON ({"limits": {…}, "quota": {…}})')
  }
  return checkBrokerConfig(parsed)
}
