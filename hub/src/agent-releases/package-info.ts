// What an agent package says about itself [EF-11.3]: its
// edgefleet-package.json, read from the .tar.gz with the `tar` package
// (nothing is unpacked). The package must have the one top folder
// edgefleet-agent-<version>-<arch> that agent-package writes (EF-11.1).
import { t as tarList, type ReadEntry } from 'tar'
import { AGENT_PACKAGE_ARCHES, EdgeFleetError, isValidVersion, type AgentPackageArch } from '@edgefleet/shared'

export interface PackageInfo {
  version: string
  arch: AgentPackageArch
  runtime: 'native' | 'wasm'
}

/** Largest edgefleet-package.json read (it lists every file's sha256). */
const MAX_MANIFEST_BYTES = 1024 * 1024

function invalid(detail: string): EdgeFleetError {
  return new EdgeFleetError('EF_ERR_AGENT_PACKAGE_INVALID', detail)
}

async function manifestText(file: string): Promise<{ top: string; text: string }> {
  const tops = new Set<string>()
  let text: string | undefined
  let top = ''
  const pending: Promise<void>[] = []
  const onReadEntry = (entry: ReadEntry) => {
    const [first, ...rest] = entry.path.split('/')
    tops.add(first)
    if (rest.join('/') !== 'edgefleet-package.json' || entry.size > MAX_MANIFEST_BYTES) {
      entry.resume()
      return
    }
    top = first
    pending.push(
      entry.concat().then((b) => {
        text = b.toString('utf8')
      }),
    )
  }
  try {
    await tarList({ file, strict: true, onReadEntry })
    await Promise.all(pending)
  } catch (err) {
    throw invalid(`archive unreadable: ${(err as Error).message}`)
  }
  if (text === undefined) throw invalid('no edgefleet-package.json under the top folder')
  if (tops.size !== 1) throw invalid(`${tops.size} top folders, expected one`)
  return { top, text }
}

/** Reads and checks the package's own manifest (EF_ERR_AGENT_PACKAGE_INVALID when anything is off). */
export async function readPackageInfo(file: string): Promise<PackageInfo> {
  const { top, text } = await manifestText(file)
  let manifest: { name?: unknown; version?: unknown; arch?: unknown; runtime?: unknown; files?: unknown }
  try {
    manifest = JSON.parse(text) as typeof manifest
  } catch (err) {
    throw invalid(`edgefleet-package.json: ${(err as Error).message}`)
  }
  if (manifest.name !== 'edgefleet-agent')
    throw invalid(`name ${JSON.stringify(manifest.name)}, expected "edgefleet-agent"`)
  if (typeof manifest.version !== 'string' || !isValidVersion(manifest.version))
    throw invalid(`version ${JSON.stringify(manifest.version)}`)
  if (!AGENT_PACKAGE_ARCHES.includes(manifest.arch as AgentPackageArch))
    throw invalid(`arch ${JSON.stringify(manifest.arch)}`)
  if (manifest.runtime !== 'native' && manifest.runtime !== 'wasm')
    throw invalid(`runtime ${JSON.stringify(manifest.runtime)}`)
  if (typeof manifest.files !== 'object' || manifest.files === null) throw invalid('no files list')
  const want = `edgefleet-agent-${manifest.version}-${manifest.arch as string}`
  if (top !== want) throw invalid(`top folder ${top}, expected ${want}`)
  return { version: manifest.version, arch: manifest.arch as AgentPackageArch, runtime: manifest.runtime }
}
