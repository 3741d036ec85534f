// The agent-update command [EF-11.4, EF-11.5]: every refusal (signature,
// architecture, downgrade, no launcher) happens before anything is written;
// then the package is received (by the chunk broadcast when the release has a
// chunk list, else — and when the broadcast fails — by HTTP range requests;
// both resumable), checked, unpacked into the slot
// not running, and state.json names it as a trial; the agent then hands over
// (exits with EXIT_HANDOVER; the unit or the supervisor starts the launcher,
// which runs the new slot). Progress and refusals are events with the cmd id.
import { renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import {
  EdgeFleetError,
  agentArchOf,
  codeOf,
  compareVersions,
  type AgentPackageArch,
  type AgentUpdateCmd,
} from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { HubTrust } from '../trust.js'
import { storageCode } from '../store/faults.js'
import type { EventReport } from '../updater/model-source.js'
import { checkPackageFile, fetchPackage, type PackageFetchOptions } from './fetch-package.js'
import { hasChunks, receivePackage, type PackageChunkOptions } from './receive-package.js'
import { unpackPackage } from './unpack.js'
import { readSlotState, slotsDir, writeSlotState, type AgentSlot } from './state.js'

export interface SelfUpdateDeps {
  dataDir: string
  /** The version of the agent running now (its package's, EF-11.6). */
  runningVersion: string
  /** The slot this agent runs from (EF_AGENT_SLOT from the launcher). */
  runningSlot: AgentSlot
  /** This machine's package architecture; default: the process's own. */
  arch?: AgentPackageArch
  trust: HubTrust
  fetch: PackageFetchOptions
  /** The chunk path [EF-11.4]; undefined: HTTP range requests only. */
  chunks?: Omit<PackageChunkOptions, 'onProgress' | 'onRejected'>
  report: (ev: EventReport) => void
  log: Logger
  now: () => number
  /** Test seam: called at each step (crash tests kill the process there). */
  onStep?: (step: string) => void
  /** Ends this agent so the launcher starts the staged one; undefined: not started by the launcher. */
  handOver?: () => void
}

/** The refusals of EF-11.5, in order; none of them writes anything. */
function refuse(deps: SelfUpdateDeps, cmd: AgentUpdateCmd): void {
  const { release } = cmd
  if (!deps.trust.verifyNew(release, cmd.releaseSig))
    throw new EdgeFleetError('EF_ERR_SIGNATURE_INVALID', `agent release ${release.version} ${release.arch}`)
  const arch = deps.arch ?? agentArchOf(process.platform, process.arch)
  if (release.arch !== arch)
    throw new EdgeFleetError('EF_ERR_AGENT_ARCH', `package ${release.arch}, device ${arch ?? process.arch}`)
  if (compareVersions(release.version, deps.runningVersion) < 0 && !cmd.rollback)
    throw new EdgeFleetError('EF_ERR_AGENT_DOWNGRADE', `${release.version} < running ${deps.runningVersion}`)
  if (!deps.handOver)
    throw new EdgeFleetError('EF_ERR_AGENT_UPDATE_UNSUPPORTED', 'started without edgefleet-launch.mjs')
}

/** Reports `downloading` progress at most twice a second; `halfway` runs once, when half the package is held (crash tests). */
function progressReporter(report: (ev: EventReport) => void, base: Omit<EventReport, 'kind'>, halfway: () => void) {
  let last = 0
  let half = false
  let first: number | undefined
  return (bytes: number, total: number) => {
    first ??= bytes
    // Only a run that itself crossed the middle: a resumed one starts past it.
    if (!half && first * 2 < total && bytes * 2 >= total && bytes < total) {
      half = true
      halfway()
    }
    const now = Date.now()
    if (now - last < 500) return
    last = now
    report({ ...base, kind: 'downloading', bytes, totalBytes: total })
  }
}

export class AgentSelfUpdater {
  constructor(private readonly d: SelfUpdateDeps) {}

  async apply(cmd: AgentUpdateCmd): Promise<EventReport> {
    const base = { cmdId: cmd.id, version: cmd.release.version }
    try {
      refuse(this.d, cmd)
      if (cmd.release.version === this.d.runningVersion) {
        const ev: EventReport = { ...base, kind: 'agent_updated', message: `agent ${cmd.release.version} already runs` }
        this.d.report(ev)
        return ev
      }
      this.d.report({ ...base, kind: 'received' })
      const slot = await this.stage(cmd)
      const ev: EventReport = { ...base, kind: 'staged', message: `agent ${cmd.release.version} in slot ${slot}` }
      this.d.report(ev)
      // After the command is logged as done (handleCmd), so the new agent does not run it again.
      setImmediate(() => this.d.handOver?.())
      return ev
    } catch (err) {
      const code = codeOf(err)
      this.d.log.warn({ code, err: (err as Error).message }, 'agent update refused')
      const ev: EventReport = { ...base, kind: 'rejected', code, message: (err as Error).message.slice(0, 2000) }
      this.d.report(ev)
      return ev
    }
  }

  /**
   * The package file, checked against the signed release: by chunks when the
   * release lists them and the agent has the MQTT path [EF-11.4]; by HTTP range
   * requests otherwise, and as the fallback when the broadcast fails (its
   * verified chunks are not reused: the two paths write different files).
   */
  private async receive(
    cmd: AgentUpdateCmd,
    incoming: string,
  ): Promise<{ file: string; bySource: [string, number][] }> {
    const { release } = cmd
    const url = new URL(cmd.url, cmd.httpBase)
    const base = { cmdId: cmd.id, version: release.version }
    if (hasChunks(release) && this.d.chunks) {
      try {
        const got = await receivePackage(incoming, release, url, {
          ...this.d.chunks,
          onProgress: progressReporter(this.d.report, base, () => this.d.onStep?.('agent-receiving')),
          onRejected: (code, message) => this.d.report({ ...base, kind: 'chunk_rejected', code, message }),
        })
        await checkPackageFile(got.file, release)
        return got
      } catch (err) {
        const code = codeOf(err)
        // A full disk or a package that is not the release's fails any path the same way.
        if (storageCode(err) || code === 'EF_ERR_AGENT_DIGEST_MISMATCH') throw err
        this.d.report({
          ...base,
          kind: 'chunk_rejected',
          code,
          message: `broadcast failed (${(err as Error).message}); continuing over HTTP`,
        })
      }
    }
    // The HTTP path resumes a partial file without counting what it appends: no byte tally.
    return { file: await fetchPackage(url, incoming, release, this.d.fetch), bySource: [] }
  }

  /** Download, check, unpack into the slot not running, and record the trial. Returns the slot. */
  private async stage(cmd: AgentUpdateCmd): Promise<'a' | 'b'> {
    const deps = this.d
    const dir = slotsDir(deps.dataDir)
    const { file, bySource } = await this.receive(cmd, join(dir, 'incoming'))
    deps.report({
      cmdId: cmd.id,
      version: cmd.release.version,
      kind: 'downloaded',
      totalBytes: cmd.release.size,
      ...(bySource.length
        ? {
            receivedBytes: bySource.reduce((sum, [, bytes]) => sum + bytes, 0),
            message: `received from ${bySource.map(([name, bytes]) => `${name} ${bytes} B`).join(', ')}`,
          }
        : { message: 'received over HTTP' }),
    })
    deps.onStep?.('agent-downloaded')
    const slot = deps.runningSlot === 'a' ? 'b' : 'a'
    const tmp = join(dir, `${slot}.unpacking`)
    await unpackPackage(file, tmp, cmd.release)
    deps.onStep?.('agent-unpacked')
    // The slot not running may hold an older agent (or a rolled-back one): replaced whole.
    rmSync(join(dir, slot), { recursive: true, force: true })
    renameSync(tmp, join(dir, slot))
    rmSync(file, { force: true })
    const prev = readSlotState(dir)
    writeSlotState(dir, {
      v: 1,
      current: slot,
      trial: {
        slot,
        version: cmd.release.version,
        from: deps.runningSlot,
        fromVersion: deps.runningVersion,
        cmdId: cmd.id,
        startedAt: deps.now(),
        deadlineMs: cmd.deadlineMs,
        starts: 0,
      },
      ...(prev.report ? { report: prev.report } : {}),
    })
    deps.onStep?.('agent-staged')
    return slot
  }
}
