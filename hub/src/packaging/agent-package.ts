// Per-architecture agent packages [EF-11.1]: edgefleet-agent-<version>-<arch>.tar.gz
// with the bundled agent, the runtime files of exactly one architecture,
// the firmware profiles, the systemd unit, an example config and an install
// script. linux-x64 and linux-arm64 carry onnxruntime-node's binary for that
// arch only (the npm package carries every platform's: 288 MB); linux-armv7,
// where onnxruntime-node has none, carries onnxruntime-web's WebAssembly
// build and nothing native (EF-5.6). The agent needs no other native module
// (its store is a journal, EF-7.4), so nothing is compiled on a device.
// Files are read from a built workspace (`pnpm build`); nothing is imported.
import { createHash } from 'node:crypto'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { create as tarCreate } from 'tar'
import { EdgeFleetError, isValidVersion } from '@edgefleet/shared'
import { INSTALL_SCRIPT } from './install-script.js'

export const AGENT_ARCHES = ['linux-x64', 'linux-arm64', 'linux-armv7'] as const
export type AgentArch = (typeof AGENT_ARCHES)[number]

/** What a package says about itself (edgefleet-package.json at its top) [EF-11.1]. */
export interface PackageManifest {
  name: 'edgefleet-agent'
  version: string
  arch: AgentArch
  /** The inference runtime the package ships [EF-5.6]. */
  runtime: 'native' | 'wasm'
  /** Node.js the agent needs on the device. */
  node: string
  /** sha256 of every file, by path inside the package. */
  files: Record<string, string>
}

export interface AgentPackage {
  file: string
  manifest: PackageManifest
  /** Sum of the files' sizes. */
  unpackedBytes: number
  compressedBytes: number
}

/** onnxruntime-node's folder name per package arch; undefined: WebAssembly. */
const NATIVE_DIR: Record<AgentArch, string | undefined> = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'linux-armv7': undefined,
}

/** The workspace root this hub was built in (hub/dist/packaging → root). */
function workspaceRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
}

export function parseArch(s: string): AgentArch {
  if ((AGENT_ARCHES as readonly string[]).includes(s)) return s as AgentArch
  throw new EdgeFleetError(
    'EF_ERR_PACKAGE_ARCH',
    `unknown architecture ${JSON.stringify(s)} (${AGENT_ARCHES.join(', ')})`,
  )
}

/** Copies `from` (a file, or a folder's files that `keep` accepts) to `to`. */
function copyTree(from: string, to: string, keep: (rel: string) => boolean = () => true): void {
  if (statSync(from).isFile()) {
    mkdirSync(dirname(to), { recursive: true })
    copyFileSync(from, to)
    return
  }
  for (const e of readdirSync(from, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const abs = join(e.parentPath, e.name)
    const rel = relative(from, abs)
    if (!keep(rel)) continue
    mkdirSync(dirname(join(to, rel)), { recursive: true })
    copyFileSync(abs, join(to, rel))
  }
}

/** JavaScript a runtime needs: no sources, maps or typings. */
const runtimeJs = (rel: string) => /\.(c?js|mjs|json)$/.test(rel) && !rel.endsWith('.map') && !rel.startsWith('lib')

/** The folder of package `name` as `req` resolves it (not every package exports its package.json). */
function packageDir(req: NodeJS.Require, name: string): string {
  let dir = dirname(req.resolve(name))
  while (dir !== dirname(dir)) {
    const pj = join(dir, 'package.json')
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === name) return dir
    dir = dirname(dir)
  }
  throw new EdgeFleetError('EF_ERR_PACKAGE_INPUT', `cannot find the folder of ${name}`)
}

/** node_modules of the package: one inference runtime and onnxruntime-common, both from the agent's own deps. */
function stageRuntime(agentDir: string, arch: AgentArch, nm: string): 'native' | 'wasm' {
  const req = createRequire(join(agentDir, 'package.json'))
  const nativeDir = NATIVE_DIR[arch]
  const pkgName = nativeDir ? 'onnxruntime-node' : 'onnxruntime-web'
  const pkgDir = packageDir(req, pkgName)
  const commonDir = packageDir(createRequire(join(pkgDir, 'package.json')), 'onnxruntime-common')
  copyTree(commonDir, join(nm, 'onnxruntime-common'), runtimeJs)
  copyTree(join(pkgDir, 'package.json'), join(nm, pkgName, 'package.json'))
  if (nativeDir) {
    copyTree(join(pkgDir, 'dist'), join(nm, pkgName, 'dist'), runtimeJs)
    copyTree(join(pkgDir, 'bin', 'napi-v6', nativeDir), join(nm, pkgName, 'bin', 'napi-v6', nativeDir))
    return 'native'
  }
  // The Node entry and the one WebAssembly build it loads (SIMD + threads, CPU kernels).
  for (const f of ['ort.node.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'])
    copyTree(join(pkgDir, 'dist', f), join(nm, pkgName, 'dist', f))
  return 'wasm'
}

/** Writes the package's files into `top`; returns the manifest. */
function stagePackage(root: string, arch: AgentArch, top: string, version: string): PackageManifest {
  const agentDir = join(root, 'agent')
  // The agent, and the launcher the unit starts (agent slots and self-update, EF-11.6).
  for (const f of ['edgefleet-agent.mjs', 'edgefleet-launch.mjs']) {
    const bundle = join(agentDir, 'dist', f)
    if (!existsSync(bundle)) throw new EdgeFleetError('EF_ERR_PACKAGE_INPUT', `${bundle} missing: run pnpm build first`)
    copyTree(bundle, join(top, 'dist', f))
  }
  // The shadow worker runs in its own thread from these files (agent/src/shadow/worker-client.ts).
  for (const f of ['shadow-worker.js', 'session.js', 'ort.js', 'ort-wasm.js'])
    copyTree(join(agentDir, 'dist', 'runtime', f), join(top, 'dist', 'runtime', f))
  writeFileSync(join(top, 'dist', 'package.json'), '{"type":"module"}\n')
  const runtime = stageRuntime(agentDir, arch, join(top, 'node_modules'))
  copyTree(
    join(root, 'firmware-profiles'),
    join(top, 'firmware-profiles'),
    (r) => /^[^/]+\.json$/.test(r) && !r.includes('schema'),
  )
  copyTree(join(agentDir, 'deploy', 'edgefleet-agent.service'), join(top, 'edgefleet-agent.service'))
  copyTree(join(agentDir, 'deploy', 'agent.example.json'), join(top, 'agent.example.json'))
  writeFileSync(join(top, 'install.sh'), INSTALL_SCRIPT.replaceAll('@ARCH@', arch), { mode: 0o755 })
  const files: Record<string, string> = {}
  for (const e of readdirSync(top, { withFileTypes: true, recursive: true }).filter((x) => x.isFile())) {
    const abs = join(e.parentPath, e.name)
    files[relative(top, abs)] = createHash('sha256').update(readFileSync(abs)).digest('hex')
  }
  const manifest: PackageManifest = { name: 'edgefleet-agent', version, arch, runtime, node: '>=20.19', files }
  writeFileSync(join(top, 'edgefleet-package.json'), JSON.stringify(manifest, null, 2) + '\n')
  return manifest
}

function treeBytes(dir: string): number {
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size
  return n
}

/**
 * Builds edgefleet-agent-<version>-<arch>.tar.gz in `outDir` from the built
 * workspace at `root`. Everything sits under one top folder of the same
 * name; the archive is written to a temporary name and renamed.
 */
export async function buildAgentPackage(
  arch: AgentArch,
  outDir: string,
  root = workspaceRoot(),
  opts: { version?: string } = {},
): Promise<AgentPackage> {
  const stage = mkdtempSync(join(tmpdir(), 'ef-agent-pkg-'))
  try {
    // A release build may stamp its own version (agent release, EF-11.3); the agent reports its package's.
    const version =
      opts.version ??
      (JSON.parse(readFileSync(join(root, 'agent', 'package.json'), 'utf8')) as { version: string }).version
    if (!isValidVersion(version)) throw new EdgeFleetError('EF_ERR_PACKAGE_INPUT', `version ${JSON.stringify(version)}`)
    const name = `edgefleet-agent-${version}-${arch}`
    const manifest = stagePackage(root, arch, join(stage, name), version)
    mkdirSync(outDir, { recursive: true })
    const file = join(outDir, `${name}.tar.gz`)
    const tmp = `${file}.${process.pid}.tmp`
    // portable + a fixed mtime: the same inputs give the same archive.
    await tarCreate({ gzip: { level: 9 }, file: tmp, cwd: stage, portable: true, mtime: new Date(0) }, [name])
    renameSync(tmp, file)
    return { file, manifest, unpackedBytes: treeBytes(join(stage, name)), compressedBytes: statSync(file).size }
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}
