// Device conditions rollouts read [EF-2.1.2]: network kind, power source and
// idleness, from the OS where it shows them, overridden by config or by a
// `conditions` command on simulated devices [EF-2.3.7].
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadavg } from 'node:os'

export type NetworkKind = 'metered' | 'unmetered' | 'unknown'
export type PowerKind = 'charging' | 'battery' | 'unknown'

export interface Conditions {
  network: NetworkKind
  power: PowerKind
  idle?: boolean
}

export interface ConditionOverrides {
  network?: NetworkKind | null
  power?: PowerKind | null
  idle?: boolean | null
}

/**
 * Power from /sys/class/power_supply: any online mains/USB supply → charging;
 * a battery and no online supply → battery; nothing readable → unknown.
 */
function osPower(root = '/sys/class/power_supply'): PowerKind {
  let names: string[]
  try {
    names = readdirSync(root)
  } catch {
    return 'unknown'
  }
  let battery = false
  for (const n of names) {
    const read = (f: string) => {
      try {
        return readFileSync(join(root, n, f), 'utf8').trim()
      } catch {
        return ''
      }
    }
    const type = read('type')
    if (type === 'Battery') {
      battery = true
      const status = read('status')
      if (status === 'Charging' || status === 'Full') return 'charging'
    } else if ((type === 'Mains' || type === 'USB') && read('online') === '1') return 'charging'
  }
  return battery ? 'battery' : 'unknown'
}

/** Idle: the 1-minute load average is below half a core. */
function osIdle(): boolean {
  return loadavg()[0] < 0.5
}

/**
 * Network kind from the interface of the default route (/proc/net/route):
 * cellular-looking interfaces (wwan*, ppp*, rmnet*, wwp*) are metered, wired
 * and Wi-Fi ones unmetered; anything else unknown.
 */
function osNetwork(routeFile = '/proc/net/route'): NetworkKind {
  let text: string
  try {
    text = readFileSync(routeFile, 'utf8')
  } catch {
    return 'unknown'
  }
  const def = text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1] === '00000000')
  const iface = def?.[0] ?? ''
  if (/^(wwan|ppp|rmnet|wwp)/.test(iface)) return 'metered'
  if (/^(eth|en|wl|br)/.test(iface)) return 'unmetered'
  return 'unknown'
}

export class DeviceConditions {
  private overrides: ConditionOverrides

  /** `base` holds config values (network from config; power/idle simulated when set). */
  constructor(
    base: ConditionOverrides,
    private readonly os: { network: () => NetworkKind; power: () => PowerKind; idle: () => boolean } = {
      network: () => osNetwork(),
      power: () => osPower(),
      idle: osIdle,
    },
  ) {
    this.overrides = { ...base }
  }

  /** Applies a `conditions` command; returns true when anything changed. */
  apply(o: ConditionOverrides): boolean {
    const before = JSON.stringify(this.current())
    // A null override is kept as null: current() reads it like an absent one (back to the OS).
    for (const k of ['network', 'power', 'idle'] as const)
      if (o[k] !== undefined) this.overrides = { ...this.overrides, [k]: o[k] }
    return JSON.stringify(this.current()) !== before
  }

  current(): Conditions {
    return {
      network: this.overrides.network ?? this.os.network(),
      power: this.overrides.power ?? this.os.power(),
      idle: this.overrides.idle ?? this.os.idle(),
    }
  }
}
