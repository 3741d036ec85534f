// Receives an agent package through the models' chunk path [EF-11.4, EF-2.7]:
// the signed release's chunk list is the artifact, the hub's broadcast
// session (one per package, joined by every device updating to it) sends
// each chunk once, repairs go to one device, and every chunk is checked
// against the signed list and written at its offset in
// <slots>/incoming/<sha256>.chunks.part by the models' artifact writer, so a
// restarted agent resumes from what is on disk. With --transfer http the
// hub's HTTP path fetches chunks first, as for models [EF-4.10]; the
// broadcast completes whatever is still missing.
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { AgentRelease, ChunkRef } from '@edgefleet/shared'
import { ArtifactWriter, type ArtifactFiles } from '../updater/artifact-writer.js'
import { download, type ChunkTransport, type ChunkedSource } from '../updater/download.js'
import { httpDownload, newDownloadStats } from '../updater/http-download.js'
import type { HttpSettings } from '../updater/sources.js'
import { storageCode } from '../store/faults.js'

/** What the chunk path needs from the agent: its MQTT transport and download settings. */
export interface PackageChunkOptions {
  transport: ChunkTransport
  /** Repairs asked for at once (the agent's fetchWindow). */
  window: number
  timeoutMs: number
  /** The hub's HTTP path, used first when the agent prefers it (--transfer http). */
  http?: HttpSettings
  onProgress?: (bytes: number, total: number) => void
  /** A chunk that failed its hash, or an HTTP source that failed (the code and why). */
  onRejected?: (code: string, message: string) => void
}

/** A release that can travel by chunks. */
export type ChunkedRelease = AgentRelease & { chunks: ChunkRef[] }

export const hasChunks = (r: AgentRelease): r is ChunkedRelease => Array.isArray(r.chunks) && r.chunks.length > 0

/** The package's files in the incoming folder: the finished one is the name the HTTP path also ends with. */
const packageFiles = (sha256: string): ArtifactFiles => ({
  part: `${sha256}.chunks.part`,
  final: `${sha256}.tar.gz`,
  marker: `${sha256}.chunks.json`,
})

/**
 * Fetches the package's chunks into `incomingDir` and returns the finished
 * file and the bytes received per source. Each chunk was checked against the
 * signed list; the caller still checks the whole file's sha256 [EF-11.4].
 */
export async function receivePackage(
  incomingDir: string,
  release: ChunkedRelease,
  packageUrl: URL,
  opts: PackageChunkOptions,
): Promise<{ file: string; bySource: [string, number][] }> {
  mkdirSync(incomingDir, { recursive: true, mode: 0o700 })
  const files = packageFiles(release.sha256)
  // Finished before a restart: the caller checks it again.
  if (existsSync(join(incomingDir, files.final))) return { file: join(incomingDir, files.final), bySource: [] }
  const source: ChunkedSource = { artifact: { digest: release.sha256, size: release.size, chunks: release.chunks } }
  const writer = ArtifactWriter.open(incomingDir, source, undefined, files)
  const bySource: [string, number][] = []
  try {
    if (opts.http?.prefer) bySource.push(['hub HTTP', await viaHttp(source, writer, packageUrl, opts)])
    const st = await download(source, writer, opts.transport, {
      window: opts.window,
      timeoutMs: opts.timeoutMs,
      onProgress: opts.onProgress,
      onRejected: (index) =>
        opts.onRejected?.(
          'EF_ERR_CHUNK_HASH_MISMATCH',
          `package chunk ${index} failed its sha256 check; fetching it again`,
        ),
    })
    bySource.push(['MQTT', st.receivedBytes])
    return { file: writer.finish(), bySource }
  } finally {
    writer.close()
  }
}

/** The hub's HTTP path for the chunks it can give; a failure is reported and the broadcast takes over. */
async function viaHttp(source: ChunkedSource, writer: ArtifactWriter, url: URL, opts: PackageChunkOptions) {
  const stats = newDownloadStats()
  const http = opts.http as HttpSettings
  try {
    await httpDownload(
      source,
      writer,
      {
        url: url.href,
        credentials: { deviceId: http.deviceId, secret: http.secret },
        tls: http.tls,
        timeoutMs: opts.timeoutMs,
        onProgress: opts.onProgress,
      },
      stats,
    )
  } catch (err) {
    if (storageCode(err)) throw err
    opts.onRejected?.(
      (err as { code?: string }).code ?? 'EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE',
      `hub HTTP download failed (${(err as Error).message}); continuing from MQTT`,
    )
  }
  return stats.receivedBytes
}
