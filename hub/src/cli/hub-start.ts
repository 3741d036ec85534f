// `edgefleet hub start`: runs until SIGINT/SIGTERM, then closes cleanly.
import { resolve } from 'node:path'
import { EdgeFleetError } from '@edgefleet/shared'
import { startHub } from '../hub.js'
import type { RetrainingOptions } from '../telemetry/index.js'

/** EF_RETRAINING: JSON of RetrainingOptions ({ingest, drift, retention}), e.g. short drift windows for a demo [EF-9]. */
function retrainingFromEnv(): RetrainingOptions | undefined {
  const raw = process.env.EF_RETRAINING
  if (!raw) return undefined
  try {
    return JSON.parse(raw) as RetrainingOptions
  } catch {
    throw new EdgeFleetError(
      'EF_ERR_CONFIG_INVALID',
      'EF_RETRAINING is not JSON ({"drift": {"windowMs": …}, "ingest": {…}, "retention": {…}})',
    )
  }
}

export async function runHub(
  o: Record<string, string | boolean | string[] | undefined>,
  print: (s: string) => void,
): Promise<number> {
  const num = (v: unknown, d: number) => (typeof v === 'string' ? Number(v) : d)
  const hub = await startHub({
    dataDir: resolve(typeof o.data === 'string' ? o.data : '.data/hub'),
    mqttPort: num(o['mqtt-port'], 1883),
    httpPort: num(o['http-port'], 8080),
    host: typeof o.host === 'string' ? o.host : undefined,
    brokerUrl: typeof o.broker === 'string' ? o.broker : undefined,
    mosquittoDir: typeof o['mosquitto-dir'] === 'string' ? resolve(o['mosquitto-dir']) : undefined,
    mosquittoPidFile: typeof o['mosquitto-pid-file'] === 'string' ? resolve(o['mosquitto-pid-file']) : undefined,
    profilesDir: typeof o.profiles === 'string' ? resolve(o.profiles) : undefined,
    log: typeof o['log-level'] === 'string' ? o['log-level'] : 'info',
    ...(typeof o['rollout-tick-ms'] === 'string' ? { rolloutTickMs: Number(o['rollout-tick-ms']) } : {}),
    retraining: retrainingFromEnv(),
  })
  const info = {
    httpUrl: hub.httpUrl,
    mqttUrl: hub.mqttUrl,
    publicKey: hub.keys.publicKey,
    pid: process.pid,
    ...(hub.adminToken ? { adminToken: hub.adminToken } : {}),
  }
  print(
    o.json
      ? JSON.stringify(info)
      : `EdgeFleet hub\n  console: ${hub.httpUrl}/\n  broker:  ${hub.mqttUrl}\n  hub key: ${hub.keys.publicKey}\n  admin token: ${hub.adminToken ? `in ${resolve(typeof o.data === 'string' ? o.data : '.data/hub', 'admin-token')}` : 'not on disk any more (create tokens with an admin token)'}`,
  )
  await new Promise<void>((res) => {
    const stop = () => res()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await hub.close()
  return 0
}
