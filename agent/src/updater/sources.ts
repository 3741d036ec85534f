// Where an artifact's chunks come from, in order [EF-4.13]: the artifact
// origin the deploy names (a CDN or any HTTP server holding the hub's blobs),
// then the hub's own HTTP path when this agent prefers it [EF-4.10], then MQTT
// [EF-2.7], which always runs last and fetches whatever is still missing.
// Every source is checked against the same signed manifest, so none of them
// has to be trusted.
import { rootCertificates } from 'node:tls'
import type { DeployCmd } from '@edgefleet/shared'
import type { HttpDownloadOptions } from './http-download.js'

/** The agent's HTTP settings (from its config): credentials for the hub, its CA. */
export interface HttpSettings {
  deviceId: string
  secret: string
  /** Use the hub's HTTP path (--transfer http) before MQTT. */
  prefer: boolean
  tls?: HttpDownloadOptions['tls']
}

export interface HttpSource {
  /** For reports: "origin" or "hub HTTP". */
  name: string
  options: Omit<HttpDownloadOptions, 'timeoutMs' | 'onProgress'>
}

/**
 * The HTTP sources of one deploy, best first. The origin gets no credentials
 * (a CDN must never see the device's secret) and no client certificate; it is
 * trusted by the system's CAs and the agent's own CA, since it is often a
 * public CDN.
 */
export function httpSources(cmd: DeployCmd, http: HttpSettings | undefined): HttpSource[] {
  const sources: HttpSource[] = []
  const digest = cmd.manifest.artifact.digest
  if (cmd.artifactBase) {
    const ownCa = http?.tls?.ca
    const ca = ownCa === undefined ? undefined : [...rootCertificates, ...(Array.isArray(ownCa) ? ownCa : [ownCa])]
    sources.push({
      name: 'origin',
      options: { url: new URL(digest, cmd.artifactBase).href, ...(ca ? { tls: { ca } } : {}) },
    })
  }
  if (http?.prefer && cmd.manifest.artifact.url && cmd.httpBase) {
    sources.push({
      name: 'hub HTTP',
      options: {
        url: new URL(cmd.manifest.artifact.url, cmd.httpBase).href,
        credentials: { deviceId: http.deviceId, secret: http.secret },
        tls: http.tls,
      },
    })
  }
  return sources
}
