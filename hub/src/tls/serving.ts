// What the hub's listeners serve TLS with [EF-10.1, EF-10.2]: the generated
// server certificate (or the operator's own files), the CA clients should
// trust, and the CA device client certificates must chain to. Also the
// bind rule: plain MQTT/HTTP only on loopback unless told --insecure.
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import { EdgeFleetError } from '@edgefleet/shared'
import { defaultTlsHosts, ensureHubCa, ensureHubTls } from './ca.js'

export interface HubTlsOptions {
  /** Extra host names (or IPs) for the generated server certificate, besides localhost, 127.0.0.1 and the host name. */
  hosts?: string[]
  /** The operator's own server certificate (PEM) instead of a generated one; needs keyFile. */
  certFile?: string
  keyFile?: string
  /** CA (PEM) that clients verify certFile with; printed to agents. Unset: a publicly trusted certificate. */
  caFile?: string
}

export interface ServingTls {
  cert: Buffer
  key: Buffer
  /** CA clients trust the hub with (PEM), unless the operator's certificate is publicly trusted. */
  ca?: Buffer
  caFile?: string
  /** The hub CA: device client certificates are verified against it [EF-10.3]. */
  clientCa: Buffer
  /** Where the hub CA lives (it issues device certificates). */
  hubCaFile: string
}

function readPem(file: string, what: string): Buffer {
  try {
    const pem = readFileSync(file)
    if (!pem.includes('-----BEGIN ')) throw new Error('not PEM')
    return pem
  } catch (err) {
    throw new EdgeFleetError('EF_ERR_TLS_FILE_INVALID', `${what} ${file}: ${(err as Error).message}`)
  }
}

/** Creates or loads the hub's TLS material under <dataDir>/tls. */
export async function resolveServingTls(dataDir: string, opts: HubTlsOptions): Promise<ServingTls> {
  if (opts.certFile || opts.keyFile) {
    if (!opts.certFile || !opts.keyFile)
      throw new EdgeFleetError('EF_ERR_TLS_FILE_INVALID', '--tls-cert and --tls-key go together')
    const hubCa = await ensureHubCa(dataDir)
    return {
      cert: readPem(opts.certFile, 'certificate'),
      key: readPem(opts.keyFile, 'key'),
      ...(opts.caFile ? { ca: readPem(opts.caFile, 'CA'), caFile: opts.caFile } : {}),
      clientCa: readFileSync(hubCa.caFile),
      hubCaFile: hubCa.caFile,
    }
  }
  const hosts = [...new Set([...defaultTlsHosts(), ...(opts.hosts ?? [])])]
  const files = await ensureHubTls(dataDir, hosts)
  const ca = readFileSync(files.caFile)
  return {
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    ca,
    caFile: files.caFile,
    clientCa: ca,
    hubCaFile: files.caFile,
  }
}

/** Loopback addresses: the only ones a plain listener may use without --insecure. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/**
 * Without TLS the hub listens only on loopback [EF-10.2]: anything else needs
 * `insecure`, and then every start says so in the log.
 */
export function checkPlainBind(host: string, insecure: boolean | undefined, log: Logger): void {
  if (isLoopback(host)) return
  if (!insecure)
    throw new EdgeFleetError(
      'EF_ERR_INSECURE_BIND',
      `${host} is not a loopback address; start with --tls (or --insecure to accept plain MQTT and HTTP)`,
    )
  log.warn(
    { code: 'EF_ERR_INSECURE_BIND', host },
    'plain MQTT and HTTP on a non-loopback address (--insecure): secrets and models cross the network in clear',
  )
}

/** Where the hub's own client reaches a listener bound to `host` (a wildcard address is reached on loopback). */
export function connectHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
}
