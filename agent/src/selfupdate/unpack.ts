// Unpacks a verified agent package into a slot folder [EF-11.4] with the
// `tar` package: only regular files and folders under the package's one top
// folder (edgefleet-agent-<version>-<arch>) are written, then every file is
// checked against the sha256 list of the package's edgefleet-package.json,
// whose name, version, arch and runtime must be the signed release's.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { join, relative } from 'node:path'
import { createHash } from 'node:crypto'
import { x as tarExtract } from 'tar'
import { EdgeFleetError, type AgentRelease } from '@edgefleet/shared'

const MANIFEST = 'edgefleet-package.json'

interface PackageManifestFile {
  name?: unknown
  version?: unknown
  arch?: unknown
  runtime?: unknown
  files?: unknown
}

function invalid(detail: string): EdgeFleetError {
  return new EdgeFleetError('EF_ERR_AGENT_PACKAGE_INVALID', detail)
}

async function extractTop(file: string, into: string, top: string): Promise<void> {
  let stray: string | undefined
  try {
    await tarExtract({
      file,
      cwd: into,
      strip: 1,
      strict: true,
      filter: (path, entry) => {
        const type = 'type' in entry ? entry.type : entry.isDirectory() ? 'Directory' : 'File'
        const inside = path === top || path === `${top}/` || path.startsWith(`${top}/`)
        const ok = inside && (type === 'File' || type === 'Directory')
        if (!ok) stray ??= `${path} (${type})`
        return ok
      },
    })
  } catch (err) {
    throw invalid(`archive unreadable: ${(err as Error).message}`)
  }
  if (stray) throw invalid(`entry outside ${top}/ or not a plain file: ${stray}`)
}

function readManifest(dir: string, release: AgentRelease): Record<string, string> {
  let manifest: PackageManifestFile
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as PackageManifestFile
  } catch (err) {
    throw invalid(`${MANIFEST}: ${(err as Error).message}`)
  }
  for (const k of ['name', 'version', 'arch', 'runtime'] as const)
    if (manifest[k] !== release[k])
      throw invalid(`${MANIFEST} says ${k} ${JSON.stringify(manifest[k])}, the release ${JSON.stringify(release[k])}`)
  if (typeof manifest.files !== 'object' || manifest.files === null) throw invalid(`${MANIFEST} has no files list`)
  return manifest.files as Record<string, string>
}

/** Every file in the folder matches the manifest's sha256, and none is missing or extra. */
function checkFiles(dir: string, files: Record<string, string>): void {
  const seen = new Set<string>()
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const rel = relative(dir, join(e.parentPath, e.name))
    if (rel === MANIFEST) continue
    const want = files[rel]
    if (!want) throw invalid(`${rel} is not in ${MANIFEST}`)
    if (
      createHash('sha256')
        .update(readFileSync(join(dir, rel)))
        .digest('hex') !== want
    )
      throw invalid(`${rel}: sha256 differs from ${MANIFEST}`)
    seen.add(rel)
  }
  const missing = Object.keys(files).find((f) => !seen.has(f))
  if (missing) throw invalid(`${missing} listed in ${MANIFEST} is missing`)
}

/** Unpacks `file` into `into` (replaced) and checks it; on any failure `into` is removed. */
export async function unpackPackage(file: string, into: string, release: AgentRelease): Promise<void> {
  rmSync(into, { recursive: true, force: true })
  mkdirSync(into, { recursive: true, mode: 0o700 })
  try {
    await extractTop(file, into, `edgefleet-agent-${release.version}-${release.arch}`)
    if (!existsSync(join(into, 'dist', 'edgefleet-agent.mjs'))) throw invalid('dist/edgefleet-agent.mjs missing')
    checkFiles(into, readManifest(into, release))
  } catch (err) {
    rmSync(into, { recursive: true, force: true })
    throw err
  }
}
