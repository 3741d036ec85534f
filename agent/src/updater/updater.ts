// The update pipeline [EF-4.5]: verify → download straight into the inactive
// slot → verify again → load + health check → atomic switch → report. Any
// failure leaves the serving version untouched; a kill -9 at any point leaves
// active.json naming a verified slot.
import {
  EdgeFleetError,
  codeOf,
  compareVersions,
  type DeployCmd,
  type Manifest,
  type RollbackCmd,
} from '@edgefleet/shared'
import type { ModelSession } from '../runtime/session.js'
import { other, type Slot } from './slots.js'
import { download } from './download.js'
import { httpDownload, newDownloadStats } from './http-download.js'
import { httpSources, type HttpSettings } from './sources.js'
import { ArtifactWriter } from './artifact-writer.js'
import {
  failureReporter,
  manifestRefusal,
  requirementRefusal,
  type EventReport,
  type ModelSourceDeps,
} from './model-source.js'
import { healthCheck, healthError } from './health.js'
import { assertSpaceFor, DEFAULT_STORAGE_MARGIN_BYTES } from './space.js'
import { asStorageError, storageCode } from '../store/faults.js'

export type { EventReport }

export interface UpdaterDeps extends ModelSourceDeps {
  /** HTTP credentials and CA; `prefer` = use the hub's HTTP path when a deploy offers one [EF-4.10]. */
  http?: HttpSettings
  /** Test seam: called at each named step, e.g. to crash the process there. */
  onStep?: (step: string) => void
  /** Free bytes to keep beyond an artifact before downloading it [EF-4.4] (default 1 MiB). */
  storageMarginBytes?: number
}

/**
 * Codes of failures that are not the command's outcome: the deploy is
 * reported `deferred` and run again later [EF-2.4.1]. Everything else
 * (signature, profile, downgrade, hashes, load, health) is final.
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'EF_ERR_STORAGE_FULL',
  'EF_ERR_STORAGE_IO',
  'EF_ERR_CONNECTION_LOST',
  'EF_ERR_DOWNLOAD_TIMEOUT',
])

/** True when a command's result is not final: the agent runs the command again by itself [EF-2.4.1]. */
export function isDeferred(ev: EventReport): boolean {
  return ev.kind === 'deferred'
}

/** One deploy command being applied: its manifest, the fields every event it reports carries, its failure reporter. */
interface DeployRun {
  cmd: DeployCmd
  manifest: Manifest
  base: Omit<EventReport, 'kind'>
  fail: ReturnType<typeof failureReporter>
}

export class Updater {
  private readonly queues = new Map<string, Promise<unknown>>()

  constructor(private readonly d: UpdaterDeps) {}

  /** Serialises work per model: two deploys of one model never interleave. */
  private serial<T>(model: string, job: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(model) ?? Promise.resolve()
    const next = prev.then(job, job)
    this.queues.set(
      model,
      next.catch(() => undefined),
    )
    return next
  }

  /** Loads every model's active slot at start; falls back to the other slot if it is damaged. */
  async restore(): Promise<void> {
    const { slots, chunks, host, trust } = this.d
    for (const model of slots.models()) {
      const act = slots.active(model)
      const candidates: Slot[] = act ? [act, other(act)] : ['a', 'b']
      // Why the active slot is not served, for the report if the other one is.
      let why: EdgeFleetError | undefined
      for (const slot of candidates) {
        const checked = slots.check(model, slot, trust)
        if (checked instanceof EdgeFleetError) {
          if (slot === act) why = checked
          continue
        }
        chunks.indexSlot(checked.manifest, checked.modelPath)
        if (host.get(model)) continue
        try {
          const session = await host.open(checked.modelPath)
          if (slot !== act) {
            // A full disk must not stop the start [EF-7.3.1]: serve the fallback from memory; the next start records it.
            try {
              slots.setActive(model, slot, checked.manifest.version)
            } catch {
              /* pointer not written: restore() picks the same fallback again next time */
            }
            const reason = why ?? new EdgeFleetError('EF_ERR_ARTIFACT_HASH_MISMATCH', 'no active slot recorded')
            this.d.report({
              kind: 'rolled_back',
              model,
              version: checked.manifest.version,
              code: reason.code,
              message: `active slot ${act ?? '-'} unusable at start (${reason.message}); serving slot ${slot}`,
            })
          }
          host.activate(checked.manifest, slot, session)
        } catch (err) {
          if (slot === act) why = new EdgeFleetError('EF_ERR_MODEL_LOAD_FAILED', (err as Error).message)
          this.d.report({
            kind: 'failed',
            model,
            version: checked.manifest.version,
            code: 'EF_ERR_MODEL_LOAD_FAILED',
            message: (err as Error).message,
          })
        }
      }
    }
  }

  deploy(cmd: DeployCmd): Promise<EventReport> {
    return this.serial(cmd.manifest.model, () => this.runDeploy(cmd))
  }

  rollback(cmd: RollbackCmd): Promise<EventReport> {
    return this.serial(cmd.model, () => this.runRollback(cmd))
  }

  private async runDeploy(cmd: DeployCmd): Promise<EventReport> {
    const manifest = cmd.manifest
    const base = {
      cmdId: cmd.id,
      deploymentId: cmd.deploymentId,
      model: manifest.model,
      version: manifest.version,
      artifact: manifest.artifact.digest,
    }
    const run: DeployRun = { cmd, manifest, base, fail: failureReporter(this.d.report, base) }
    const answered = await this.answerWithoutDownload(run)
    if (answered) return answered
    this.d.report({ ...base, kind: 'received' })
    this.d.onStep?.('received')
    const staged = await this.stageBuild(run)
    if (!('modelPath' in staged)) return staged
    return this.activateStaged(run, staged.slot, staged.modelPath)
  }

  /**
   * The outcome of a deploy that needs no download: a refusal, or the build
   * already serving. Undefined when the deploy goes ahead.
   */
  private async answerWithoutDownload({ cmd, manifest, base, fail }: DeployRun): Promise<EventReport | undefined> {
    // Refusals first: nothing is downloaded for a command that cannot apply [EF-3.2, EF-4.6].
    const refusal = manifestRefusal(this.d, manifest, cmd.manifestSig) ?? (await requirementRefusal(this.d, manifest))
    if (refusal) return fail('rejected', refusal)
    const live = this.d.host.get(manifest.model)
    if (live?.manifest.artifact.digest === manifest.artifact.digest) {
      const ev: EventReport = { ...base, kind: 'activated', message: 'already serving this build' }
      this.d.report(ev)
      return ev
    }
    if (live && compareVersions(manifest.version, live.version) < 0 && !cmd.rollback) {
      return fail(
        'rejected',
        new EdgeFleetError('EF_ERR_DOWNGRADE_REFUSED', `${manifest.version} < active ${live.version}`),
      )
    }
    return undefined
  }

  /**
   * Writes the build straight into the inactive slot, downloads and verifies it:
   * the slot and the model file, or the event that stopped it. The serving slot is never touched.
   */
  private async stageBuild(run: DeployRun): Promise<EventReport | { slot: Slot; modelPath: string }> {
    const { cmd, manifest, base, fail } = run
    const slot = this.d.slots.stagingSlot(manifest.model)
    const writer = this.openSlotWriter(run, slot)
    if (!(writer instanceof ArtifactWriter)) return writer
    this.d.onStep?.('cleared')
    let fetched: { received: number; bySource: string }
    try {
      fetched = await this.fetchArtifact(cmd, writer, base)
    } catch (err) {
      return this.stopped(fail, base, err, { model: manifest.model, slot, writer })
    }
    this.d.report({
      ...base,
      kind: 'downloaded',
      bytes: manifest.artifact.size,
      totalBytes: manifest.artifact.size,
      receivedBytes: fetched.received,
      message: `received from ${fetched.bySource}`,
    })
    this.d.onStep?.('downloaded')
    let modelPath: string
    try {
      modelPath = writer.finish()
      this.d.slots.writeManifest(manifest.model, slot, manifest, cmd.manifestSig)
    } catch (err) {
      return this.stopped(fail, base, err, { model: manifest.model, slot, writer })
    }
    this.d.report({ ...base, kind: 'verified' })
    this.d.onStep?.('verified')
    return { slot, modelPath }
  }

  /** Checks the build fits, clears the inactive slot unless a download can resume there, and opens its writer. */
  private openSlotWriter({ manifest, base, fail }: DeployRun, slot: Slot): ArtifactWriter | EventReport {
    const { slots, chunks } = this.d
    const dir = slots.dir(manifest.model, slot)
    try {
      // Nothing is touched for a build that cannot fit: the inactive slot keeps the rollback target [EF-4.4].
      assertSpaceFor(dir, manifest.artifact.size, this.d.storageMarginBytes ?? DEFAULT_STORAGE_MARGIN_BYTES)
      if (!ArtifactWriter.resumable(dir, manifest)) {
        // Chunks held only by the slot about to be overwritten are kept loose first.
        chunks.evacuate(slots.modelPath(manifest.model, slot), new Set(manifest.artifact.chunks.map((c) => c.digest)))
        slots.clear(manifest.model, slot)
      }
      return ArtifactWriter.open(dir, manifest, chunks)
    } catch (err) {
      return this.stopped(fail, base, err, { model: manifest.model, slot })
    }
  }

  /** Loads the staged build, health-checks it [EF-4.5], switches the active slot to it and reports it activated. */
  private async activateStaged(run: DeployRun, slot: Slot, modelPath: string): Promise<EventReport> {
    const { manifest, base, fail } = run
    const { slots, chunks, host, report } = this.d
    let session: ModelSession
    try {
      session = await host.open(modelPath)
    } catch (err) {
      return fail('failed', new EdgeFleetError('EF_ERR_MODEL_LOAD_FAILED', (err as Error).message.split('\n')[0]))
    }
    report({ ...base, kind: 'staged' })
    this.d.onStep?.('staged')
    try {
      await healthCheck((x) => session.run(x), manifest)
    } catch (err) {
      await session.release()
      this.discardStaged(manifest, slot, modelPath)
      return fail('health_failed', healthError(err))
    }
    this.d.onStep?.('healthy')
    try {
      slots.setActive(manifest.model, slot, manifest.version)
    } catch (err) {
      // The pointer could not be written (disk full): keep serving the old version, try again later.
      await session.release()
      return this.stopped(fail, base, err, { model: manifest.model, slot })
    }
    this.d.onStep?.('switched')
    host.activate(manifest, slot, session)
    chunks.indexSlot(manifest, modelPath)
    chunks.prune()
    const ev: EventReport = { ...base, kind: 'activated' }
    report(ev)
    this.d.onChange()
    return ev
  }

  /**
   * Discards a staged build that failed its health check [EF-4.5]: it verifies (signed, right digest),
   * so left in place a restore() fallback would serve it and a rollback would pick it as the "previous"
   * version. Its verified chunks stay in the loose store: a fixed build usually shares most of them.
   */
  private discardStaged(manifest: Manifest, slot: Slot, modelPath: string): void {
    this.d.chunks.indexSlot(manifest, modelPath)
    this.d.chunks.evacuate(modelPath, new Set(manifest.artifact.chunks.map((c) => c.digest)))
    this.d.slots.clear(manifest.model, slot)
  }

  /**
   * A deploy stopped by `err`. A transient fault [EF-2.4.1] is reported
   * `deferred` and the command runs again later; a storage fault also discards
   * the partial artifact in the inactive slot, which may never fit [EF-4.4].
   * Anything else is the command's final `failed`.
   */
  private stopped(
    fail: ReturnType<typeof failureReporter>,
    base: Omit<EventReport, 'kind'>,
    err: unknown,
    at: { model: string; slot: Slot; writer?: ArtifactWriter },
  ): EventReport {
    try {
      at.writer?.close()
    } catch {
      /* closing a file on a failing disk: nothing more to do */
    }
    const cause = asStorageError(err, 'writing the artifact')
    if (storageCode(cause) && at.writer) {
      try {
        this.d.slots.clear(at.model, at.slot)
      } catch {
        /* the disk refuses even that: the next attempt clears it */
      }
    }
    if (!TRANSIENT_CODES.has(codeOf(cause))) return fail('failed', cause)
    const ev: EventReport = {
      ...base,
      kind: 'deferred',
      code: codeOf(cause),
      message: (cause as Error).message.slice(0, 2000),
    }
    this.d.report(ev)
    return ev
  }

  /**
   * Fetches the chunks the device lacks into `writer`: from each HTTP source
   * the deploy offers, origin first [EF-4.13], then over MQTT [EF-2.7] for
   * whatever is still missing. A failing source is reported and the next one
   * continues from the verified chunks already written. Returns the bytes
   * received and, per source, how many.
   */
  private async fetchArtifact(
    cmd: DeployCmd,
    writer: ArtifactWriter,
    base: Omit<EventReport, 'kind'>,
  ): Promise<{ received: number; bySource: string }> {
    const { report } = this.d
    const manifest = cmd.manifest
    let lastTick = 0
    const onProgress = (bytes: number, total: number) => {
      const now = Date.now()
      if (now - lastTick > 500) {
        lastTick = now
        report({ ...base, kind: 'downloading', bytes, totalBytes: total })
      }
    }
    const tally: [string, number][] = []
    const sources = httpSources(cmd, this.d.http)
    for (const [at, source] of sources.entries()) {
      const stats = newDownloadStats()
      try {
        await httpDownload(
          manifest,
          writer,
          { ...source.options, timeoutMs: this.d.downloadTimeoutMs, onProgress },
          stats,
        )
      } catch (err) {
        // A full disk fails every source just the same: stop here.
        if (storageCode(err)) throw err
        const next = sources[at + 1]?.name ?? 'MQTT'
        report({
          ...base,
          kind: 'chunk_rejected',
          code: codeOf(err),
          message: `${source.name} download failed (${(err as Error).message}); continuing from ${next}`,
        })
      } finally {
        tally.push([source.name, stats.receivedBytes])
      }
    }
    const st = await download(manifest, writer, this.d.transport, {
      window: this.d.fetchWindow,
      timeoutMs: this.d.downloadTimeoutMs,
      onProgress,
      onRejected: (index) =>
        report({
          ...base,
          kind: 'chunk_rejected',
          code: 'EF_ERR_CHUNK_HASH_MISMATCH',
          message: `chunk ${index} failed its sha256 check; fetching it again`,
        }),
    })
    tally.push(['MQTT', st.receivedBytes])
    return {
      received: tally.reduce((sum, [, bytes]) => sum + bytes, 0),
      bySource: tally.map(([name, bytes]) => `${name} ${bytes} B`).join(', '),
    }
  }

  private async runRollback(cmd: RollbackCmd): Promise<EventReport> {
    const { slots, host, trust, report } = this.d
    const act = slots.active(cmd.model)
    const base = { cmdId: cmd.id, model: cmd.model }
    const target = act ? slots.verified(cmd.model, other(act), trust) : undefined
    if (!target || (cmd.toVersion && target.manifest.version !== cmd.toVersion)) {
      const ev: EventReport = {
        ...base,
        kind: 'failed',
        code: 'EF_ERR_NO_ROLLBACK_TARGET',
        message: cmd.toVersion ? `no verified slot holds ${cmd.toVersion}` : 'no verified previous slot',
      }
      report(ev)
      return ev
    }
    try {
      const session = await host.open(target.modelPath)
      await healthCheck((x) => session.run(x), target.manifest)
      slots.setActive(cmd.model, target.slot, target.manifest.version)
      host.activate(target.manifest, target.slot, session)
    } catch (err) {
      const ev: EventReport = {
        ...base,
        kind: 'failed',
        version: target.manifest.version,
        code: codeOf(err),
        message: (err as Error).message,
      }
      report(ev)
      return ev
    }
    const ev: EventReport = { ...base, kind: 'rolled_back', version: target.manifest.version }
    report(ev)
    this.d.onChange()
    return ev
  }
}
