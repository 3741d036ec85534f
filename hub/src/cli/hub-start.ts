// `edgefleet hub start`: runs until SIGINT/SIGTERM, then closes cleanly. The
// hub itself is imported when the command runs, so other commands stay light.
import { resolve } from 'node:path'
import { EdgeFleetError } from '@edgefleet/shared'
import type { RetrainingOptions } from '../telemetry/index.js'
import { command, UsageError, type Args, type Command } from './command.js'
import type { HubOptions } from '../hub.js'
import { parseNumber } from './model-options.js'
import { brokerConfigFromEnv } from '../broker/config.js'
import { checkClusterUrl, checkReplicaId } from '../cluster/config.js'

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

/** --tls, --no-tls, --insecure and the certificate flags as HubOptions [EF-10.1, EF-10.2]. */
function tlsOptions(args: Args, path: (flag: string) => string | undefined): Partial<HubOptions> {
  if (args.flag('tls') && args.flag('no-tls')) throw new UsageError('--tls and --no-tls contradict each other')
  const files = { certFile: path('tls-cert'), keyFile: path('tls-key'), caFile: path('tls-ca') }
  const hosts = args.strs('tls-host')
  const own = files.certFile || files.keyFile || files.caFile
  if (args.flag('no-tls') && (own || hosts.length)) throw new UsageError('--no-tls takes no certificate flags')
  const on = args.flag('tls') || own || hosts.length > 0
  const mqttsPort = args.str('mqtts-port')
  return {
    ...(on
      ? {
          tls: {
            ...(hosts.length ? { hosts } : {}),
            ...Object.fromEntries(Object.entries(files).filter(([, v]) => v)),
          },
        }
      : {}),
    // --insecure alone means plain listeners too: saying it is the explicit choice EF-10.2 asks for.
    ...(args.flag('no-tls') || (args.flag('insecure') && !on) ? { tls: false } : {}),
    ...(args.flag('insecure') ? { insecure: true } : {}),
    ...(mqttsPort !== undefined ? { mqttsPort: parseNumber(mqttsPort, '--mqtts-port') } : {}),
  }
}

/** --cluster (or EDGEFLEET_CLUSTER_URL, keeping credentials out of `ps`) and --replica-id [EF-12]. */
function clusterOptions(args: Args): HubOptions['cluster'] {
  // When `--store postgresql://…` exists, replicas should elect on that database by default [EF-12.1].
  const url = args.str('cluster') ?? process.env.EDGEFLEET_CLUSTER_URL
  const replicaId = args.str('replica-id')
  return {
    ...(url !== undefined ? { url: checkClusterUrl(url) } : {}),
    ...(replicaId !== undefined ? { replicaId: checkReplicaId(replicaId) } : {}),
  }
}

async function runHub(args: Args, print: (s: string) => void): Promise<number> {
  const num = (flag: string, fallback: number) => {
    const given = args.str(flag)
    return given !== undefined ? parseNumber(given, `--${flag}`) : fallback
  }
  const path = (flag: string) => {
    const given = args.str(flag)
    return given !== undefined ? resolve(given) : undefined
  }
  const dataDir = resolve(args.str('data') ?? '.data/hub')
  const { startHub } = await import('../hub.js')
  const hub = await startHub({
    dataDir,
    mqttPort: num('mqtt-port', 1883),
    httpPort: num('http-port', 8080),
    host: args.str('host'),
    ...tlsOptions(args, path),
    brokerUrl: args.str('broker'),
    mosquittoDir: path('mosquitto-dir'),
    mosquittoPidFile: path('mosquitto-pid-file'),
    natsDir: path('nats-dir'),
    natsPidFiles: args.strs('nats-pid-file').map((f) => resolve(f)),
    profilesDir: path('profiles'),
    blobDir: path('blob-dir'),
    artifactUrl: args.str('artifact-url'),
    // The environment keeps the stream's credentials out of `ps` [EF-9.13].
    streamUrl: args.str('stream') ?? process.env.EDGEFLEET_STREAM_URL,
    log: args.str('log-level') ?? 'info',
    ...(args.str('rollout-tick-ms') !== undefined ? { rolloutTickMs: num('rollout-tick-ms', 1000) } : {}),
    ...(args.str('hold-tick-ms') !== undefined ? { holdTickMs: num('hold-tick-ms', 10_000) } : {}),
    ...(args.flag('immediate-deploys') ? { immediateDeploys: true } : {}),
    ...(args.str('reconcile-ms') !== undefined ? { reconcileMs: num('reconcile-ms', 30_000) } : {}),
    ...(args.str('agent-deadline-ms') !== undefined ? { agentDeadlineMs: num('agent-deadline-ms', 120_000) } : {}),
    retraining: retrainingFromEnv(),
    broker: brokerConfigFromEnv(),
    cluster: clusterOptions(args),
    keyFile: path('key-file'),
    // The environment keeps the database's credentials out of `ps`, as for --stream.
    store: args.str('store') ?? process.env.EDGEFLEET_STORE_URL,
  })
  const info = {
    httpUrl: hub.httpUrl,
    mqttUrl: hub.mqttUrl,
    publicKey: hub.keys.publicKey,
    pid: process.pid,
    ...(hub.caFile ? { caFile: hub.caFile } : {}),
    ...(hub.adminToken ? { adminToken: hub.adminToken } : {}),
  }
  print(
    args.flag('json')
      ? JSON.stringify(info)
      : `EdgeFleet hub\n  console: ${hub.httpUrl}/\n  broker:  ${hub.mqttUrl}\n  hub key: ${hub.keys.publicKey}\n${hub.caFile ? `  CA:      ${hub.caFile} (agents: --ca, CLI: --ca or EDGEFLEET_CA)\n` : ''}  admin token: ${hub.adminToken ? `in ${resolve(dataDir, 'admin-token')}` : 'not on disk any more (create tokens with an admin token)'}`,
  )
  await new Promise<void>((res) => {
    const stop = () => res()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await hub.close()
  return 0
}

const hubStart = command({
  name: 'hub start',
  summary: ['hub start', 'run a hub (broker, store, API, console)'],
  help: `edgefleet hub start [--data DIR] [--store URL] [--mqtt-port N] [--http-port N] [--host H] [--tls | --no-tls] [--insecure] [--broker URL] [--profiles DIR] [--blob-dir DIR] [--artifact-url URL] [--stream URL] [--log-level L] [--json]
  --data DIR       data folder (database, blobs, keys); default ./.data/hub
  --store postgresql://[user[:pass]@]host:port/db  the hub's database on PostgreSQL instead of SQLite's
                   <data>/hub.db (docs/ARCHITECTURE.md#store); or set EDGEFLEET_STORE_URL
  --mqtt-port N    embedded broker port (default 1883; 0 = ephemeral)
  --http-port N    API and console port (default 8080; 0 = ephemeral)
  --host H         address the API and the embedded broker listen on (default 127.0.0.1)
  --broker URL[,URL]  use an external MQTT broker instead of the embedded one (a cluster: its nodes, comma-separated)
  --profiles DIR   firmware profiles folder (default: the repository's firmware-profiles/)
  --blob-dir DIR   content-addressed build store (files named by sha256), e.g. on storage shared by replicas;
                   default <data>/blobs, whose files are adopted (hard-linked or copied) on the first start
  --artifact-url URL  base URL of an HTTP origin or CDN serving --blob-dir's files by name: agents fetch
                   builds from <URL><sha256> first, then from the hub (HTTP, MQTT)
  --stream nats://[user:pass@]host:port[,host:port…]  telemetry and samples go through NATS JetStream
                   (stream EF_TELEMETRY, durable consumer ef-ingest) and the retraining feed is published
                   to stream EF_FEED (docs/RETRAINING.md); or set EDGEFLEET_STREAM_URL
  --cluster postgresql://…  several replicas: elect the one that runs rollouts, held deploys, resends, drift
                   and retention on this PostgreSQL (lease row, docs/ARCHITECTURE.md#hub-replicas); or set
                   EDGEFLEET_CLUSTER_URL. Without it this hub is the only replica and always leads
  --key-file F     the hub's signing key, broker secret and key chain in F instead of <data>/hub-keys.json:
                   one file every replica mounts (created by the first start, mode 0600)
  --replica-id ID  this replica's name in the election, /healthz and /metrics (default <hostname>-<pid>)
  --log-level L    pino level: fatal, error, warn, info (default), debug, trace
  --mosquitto-dir DIR       keep a Mosquitto password file and ACL for the fleet in DIR
  --mosquitto-pid-file FILE send Mosquitto a SIGHUP (reload) after each provisioning
  --nats-dir DIR            keep a NATS cluster's authorization (auth.conf, one user per device) in DIR
  --nats-pid-file FILE      a local NATS node's pid file, sent SIGHUP (reload) after each change (repeatable)
  --rollout-tick-ms N       how often rollouts are evaluated (default 1000)
  --hold-tick-ms N          how often deploys held for a maintenance window or conditions are looked at (default 10000)
  --immediate-deploys       send every plain deploy at once, as if each had --now (windows and conditions
                            ignored): for a lab or a test bench
  --reconcile-ms N          resend open commands (deploys, agent updates) idle this long (default 30000; 0: never)
  --agent-deadline-ms N     time a new agent has to start, reconnect and pass its health check before the old one
                            returns, for agent updates that name none (agent rollouts; default 120000, 1000-3600000)
  --tls            TLS on every listener (the default off loopback): a private CA and server certificate are
                   created in <data>/tls at first start; MQTT over TLS on --mqtts-port, HTTPS for API and console
  --tls-host NAME  another name (or IP) for the generated server certificate (repeatable)
  --tls-cert F --tls-key F [--tls-ca F]   serve your own certificate instead (--tls-ca: the CA agents trust)
  --mqtts-port N   embedded broker's MQTT-over-TLS port (default 8883; 0 = ephemeral)
  --no-tls         plain MQTT and HTTP (loopback only, unless --insecure)
  --insecure       allow plain MQTT and HTTP on a non-loopback address (logged as a warning at every start)
  --json           print one JSON line with the URLs, the CA file (TLS), the hub key and (first start) the admin token`,
  options: {
    data: { type: 'string' },
    'mqtt-port': { type: 'string' },
    'http-port': { type: 'string' },
    host: { type: 'string' },
    broker: { type: 'string' },
    profiles: { type: 'string' },
    'blob-dir': { type: 'string' },
    store: { type: 'string' },
    'artifact-url': { type: 'string' },
    stream: { type: 'string' },
    'log-level': { type: 'string' },
    cluster: { type: 'string' },
    'replica-id': { type: 'string' },
    'key-file': { type: 'string' },
    'mosquitto-dir': { type: 'string' },
    'mosquitto-pid-file': { type: 'string' },
    'nats-dir': { type: 'string' },
    'nats-pid-file': { type: 'string', multiple: true },
    'rollout-tick-ms': { type: 'string' },
    'hold-tick-ms': { type: 'string' },
    'immediate-deploys': { type: 'boolean' },
    'reconcile-ms': { type: 'string' },
    'agent-deadline-ms': { type: 'string' },
    tls: { type: 'boolean' },
    'no-tls': { type: 'boolean' },
    insecure: { type: 'boolean' },
    'tls-host': { type: 'string', multiple: true },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-ca': { type: 'string' },
    'mqtts-port': { type: 'string' },
  },
  run: ({ args, print }) => runHub(args, print),
})

export const hubStartCommands: Command[] = [hubStart]
