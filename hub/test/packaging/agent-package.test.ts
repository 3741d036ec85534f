// Agent packages [EF-11]: built through `edgefleet agent-package` for the
// three architectures; every .node/.so inside is an ELF object of the
// package's machine and word size (x86-64, AArch64, none at all on armv7);
// the manifest's hashes match; sizes stay under the targets (a byte guard,
// not a timing); install.sh refuses the wrong machine before writing
// anything, installs into a prefix and never overwrites a config.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { extract } from 'tar'
import { main } from '../../src/cli/edgefleet.js'
import { buildAgentPackage, type PackageManifest } from '../../src/packaging/agent-package.js'

const dir = mkdtempSync(join(tmpdir(), 'ef-agent-pkg-test-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function sink() {
  let buf = ''
  const stream = { write: (s: string) => ((buf += s), true), isTTY: false } as unknown as NodeJS.WriteStream
  return { stream, text: () => buf }
}
async function run(argv: string[]) {
  const out = sink()
  const err = sink()
  const code = await main(argv, out.stream, err.stream)
  return { code, out: out.text(), err: err.text() }
}

/** e_machine and EI_CLASS of an ELF file, or undefined when it is no ELF. */
function elfHeader(file: string): { machine: number; bits: 32 | 64 } | undefined {
  const b = readFileSync(file).subarray(0, 20)
  if (b.length < 20 || b.readUInt32BE(0) !== 0x7f454c46) return undefined
  const le = b[5] === 1
  return { machine: le ? b.readUInt16LE(18) : b.readUInt16BE(18), bits: b[4] === 2 ? 64 : 32 }
}

const EXPECT = {
  'linux-x64': { machine: 62, bits: 64, maxUnpacked: 60e6, maxCompressed: 25e6 },
  'linux-arm64': { machine: 183, bits: 64, maxUnpacked: 45e6, maxCompressed: 45e6 },
  'linux-armv7': { machine: 40, bits: 32, maxUnpacked: 30e6, maxCompressed: 30e6 },
} as const
type Arch = keyof typeof EXPECT

const files = (root: string) =>
  readdirSync(root, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))

describe('agent-package', () => {
  const built: Record<string, { tarball: string; unpackedBytes: number; compressedBytes: number; top: string }> = {}

  beforeAll(async () => {
    const r = await run(['agent-package', '--arch', 'all', '--out', join(dir, 'out'), '--json'])
    expect(r.code, r.err).toBe(0)
    for (const pkg of JSON.parse(r.out).packages as {
      arch: Arch
      file: string
      unpackedBytes: number
      compressedBytes: number
    }[]) {
      const to = join(dir, 'unpacked', pkg.arch)
      mkdirSync(to, { recursive: true })
      await extract({ file: pkg.file, cwd: to })
      built[pkg.arch] = {
        tarball: pkg.file,
        unpackedBytes: pkg.unpackedBytes,
        compressedBytes: pkg.compressedBytes,
        top: join(to, readdirSync(to)[0]),
      }
    }
  }, 300_000)

  it('writes one edgefleet-agent-<version>-<arch>.tar.gz per architecture, one top folder each', () => {
    expect(Object.keys(built).sort()).toEqual(['linux-arm64', 'linux-armv7', 'linux-x64'])
    for (const [arch, b] of Object.entries(built)) {
      expect(b.tarball).toMatch(new RegExp(`edgefleet-agent-\\d+\\.\\d+\\.\\d+-${arch}\\.tar\\.gz$`))
      expect(b.top.endsWith(`-${arch}`)).toBe(true)
    }
  })

  it('every .node/.so is an ELF object of the package architecture; armv7 has none and runs on WebAssembly', () => {
    for (const [arch, build] of Object.entries(built) as [Arch, (typeof built)[string]][]) {
      const natives = files(build.top).filter((f) => /\.node$|\.so(\.\d+)*$/.test(f))
      if (arch === 'linux-armv7') {
        expect(natives).toEqual([])
        expect(existsSync(join(build.top, 'node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm'))).toBe(true)
        expect(existsSync(join(build.top, 'node_modules/onnxruntime-node'))).toBe(false)
        continue
      }
      expect(natives.length).toBeGreaterThanOrEqual(2) // the binding and libonnxruntime
      for (const f of natives) {
        const h = elfHeader(f)
        expect(h, relative(build.top, f)).toEqual({ machine: EXPECT[arch].machine, bits: EXPECT[arch].bits })
      }
      // Any non-ELF native-looking file, another platform's folder or a native SQLite would be a packaging bug.
      expect(files(build.top).some((f) => /darwin|win32|better-sqlite3|\.dylib$|\.dll$/.test(f))).toBe(false)
      expect(existsSync(join(build.top, 'node_modules/onnxruntime-web'))).toBe(false)
    }
  })

  it('carries the agent, its manifest with the hash of every file, unit, example config and install script', () => {
    for (const [arch, build] of Object.entries(built)) {
      const manifest = JSON.parse(readFileSync(join(build.top, 'edgefleet-package.json'), 'utf8')) as PackageManifest
      expect(manifest).toMatchObject({
        name: 'edgefleet-agent',
        arch,
        runtime: arch === 'linux-armv7' ? 'wasm' : 'native',
      })
      const onDisk = files(build.top)
        .map((f) => relative(build.top, f))
        .filter((f) => f !== 'edgefleet-package.json')
        .sort()
      expect(Object.keys(manifest.files).sort()).toEqual(onDisk)
      for (const [f, sha] of Object.entries(manifest.files))
        expect(
          createHash('sha256')
            .update(readFileSync(join(build.top, f)))
            .digest('hex'),
          f,
        ).toBe(sha)
      for (const file of [
        'dist/edgefleet-agent.mjs',
        'dist/edgefleet-launch.mjs',
        'dist/runtime/shadow-worker.js',
        'edgefleet-agent.service',
        'agent.example.json',
        'install.sh',
        'firmware-profiles/gateway-armv7-small.json',
      ])
        expect(manifest.files[file], file).toBeDefined()
      expect(statSync(join(build.top, 'install.sh')).mode & 0o111).not.toBe(0)
    }
  })

  it('stays within the size targets (x64 ≤ 60 MB unpacked and ≤ 25 MB compressed, arm64 ≤ 45 MB, armv7 ≤ 30 MB)', () => {
    for (const [arch, b] of Object.entries(built) as [Arch, (typeof built)[string]][]) {
      expect(b.unpackedBytes, arch).toBeLessThanOrEqual(EXPECT[arch].maxUnpacked)
      expect(b.compressedBytes, arch).toBeLessThanOrEqual(EXPECT[arch].maxCompressed)
      expect(statSync(b.tarball).size).toBe(b.compressedBytes)
    }
  })

  it('the same inputs give the same archive', async () => {
    const again = await buildAgentPackage('linux-armv7', join(dir, 'again'))
    expect(readFileSync(again.file).equals(readFileSync(built['linux-armv7'].tarball))).toBe(true)
  }, 120_000)

  it('an unknown --arch is EF_ERR_PACKAGE_ARCH; a workspace without the agent bundle is EF_ERR_PACKAGE_INPUT', async () => {
    const r = await run(['agent-package', '--arch', 'linux-mips', '--out', join(dir, 'x')])
    expect(r.code).toBe(1)
    expect(r.err).toContain('EF_ERR_PACKAGE_ARCH')
    const empty = join(dir, 'empty-root')
    mkdirSync(join(empty, 'agent'), { recursive: true })
    writeFileSync(join(empty, 'agent', 'package.json'), '{"version":"9.9.9"}')
    await expect(buildAgentPackage('linux-x64', join(dir, 'x'), empty)).rejects.toMatchObject({
      code: 'EF_ERR_PACKAGE_INPUT',
    })
    expect(existsSync(join(dir, 'x', 'edgefleet-agent-9.9.9-linux-x64.tar.gz'))).toBe(false)
  })

  describe('install.sh', () => {
    const env = (root: string, extra: Record<string, string> = {}) => ({
      ...process.env,
      PREFIX: join(root, 'opt'),
      CONF_DIR: join(root, 'etc'),
      UNIT_DIR: join(root, 'units'),
      NO_SYSTEMD: '1',
      NO_USER: '1',
      ...extra,
    })

    it('refuses another machine type before writing anything (EF_ERR_PACKAGE_ARCH, exit 3)', () => {
      const root = join(dir, 'install-wrong')
      for (const [arch, machine] of [
        ['linux-x64', 'aarch64'],
        ['linux-arm64', 'x86_64'],
        ['linux-armv7', 'x86_64'],
      ]) {
        const r = spawnSync('sh', [join(built[arch].top, 'install.sh')], {
          env: env(root, { EF_UNAME_M: machine }),
          encoding: 'utf8',
        })
        expect(r.status).toBe(3)
        expect(r.stderr).toContain('EF_ERR_PACKAGE_ARCH')
        expect(existsSync(root)).toBe(false)
      }
    })

    it('installs into a prefix: the agent, a 0600 config from the example, the unit pointing at both; a config is never overwritten', () => {
      const root = join(dir, 'install-ok')
      const sh = join(built['linux-x64'].top, 'install.sh')
      const r = spawnSync('sh', [sh], { env: env(root, { EF_UNAME_M: 'x86_64' }), encoding: 'utf8' })
      expect(r.status, r.stderr).toBe(0)
      expect(existsSync(join(root, 'opt', 'dist', 'edgefleet-agent.mjs'))).toBe(true)
      expect(existsSync(join(root, 'opt', 'dist', 'edgefleet-launch.mjs'))).toBe(true)
      expect(existsSync(join(root, 'opt', 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64'))).toBe(
        true,
      )
      expect(statSync(join(root, 'etc', 'agent.json')).mode & 0o777).toBe(0o600)
      const unit = readFileSync(join(root, 'units', 'edgefleet-agent.service'), 'utf8')
      // The unit starts the launcher, which runs the agent slot in use and restarts on a hand-over [EF-11.6].
      expect(unit).toContain(
        `${join(root, 'opt')}/dist/edgefleet-launch.mjs --config ${join(root, 'etc', 'agent.json')}`,
      )
      expect(unit).toMatch(/^RestartForceExitStatus=75$/m)
      writeFileSync(join(root, 'etc', 'agent.json'), '{"mine":true}')
      expect(spawnSync('sh', [sh], { env: env(root, { EF_UNAME_M: 'amd64' }) }).status).toBe(0)
      expect(readFileSync(join(root, 'etc', 'agent.json'), 'utf8')).toBe('{"mine":true}')
    })
  })
})
