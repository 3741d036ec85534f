// Shadow commands [EF-2.3.4, EF-2.3.5]: fetch and verify a candidate like a
// deploy, keep it in shadow/<model>/ (outside the A/B slots, so the rollback
// target stays), health-check it in its worker and start shadowing; promote it
// through the A/B slots with the same atomic switch as a deploy; or discard it.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  renameSync,
  openSync,
  fsyncSync,
  closeSync,
} from 'node:fs'
import { join } from 'node:path'
import {
  EdgeFleetError,
  codeOf,
  type DiscardCmd,
  type Manifest,
  type PromoteCmd,
  type ShadowCmd,
} from '@edgefleet/shared'
import { download } from '../updater/download.js'
import { healthCheck, healthError } from '../updater/health.js'
import {
  failureReporter,
  manifestRefusal,
  requirementRefusal,
  type EventReport,
  type ModelSourceDeps,
} from '../updater/model-source.js'
import { hashFile } from '../updater/slots.js'
import { ArtifactWriter } from '../updater/artifact-writer.js'
import type { ShadowRunner } from './runner.js'

export interface ShadowManagerDeps extends ModelSourceDeps {
  /** Where candidates are kept (shadow/<model>/), outside the A/B slots. */
  dir: string
  runner: ShadowRunner
}

interface Saved {
  manifest: Manifest
  manifestSig: string
  fraction: number
}

export class ShadowManager {
  constructor(private readonly d: ShadowManagerDeps) {
    mkdirSync(d.dir, { recursive: true, mode: 0o700 })
  }

  private modelDir(model: string): string {
    return join(this.d.dir, model)
  }

  /** Resumes shadowing the candidates saved before a restart (re-verified). */
  async restore(): Promise<void> {
    const { readdirSync } = await import('node:fs')
    for (const model of readdirSync(this.d.dir)) {
      const f = join(this.modelDir(model), 'candidate.json')
      if (!existsSync(f)) continue
      try {
        const s = JSON.parse(readFileSync(f, 'utf8')) as Saved
        const path = join(this.modelDir(model), 'model.onnx')
        if (!this.d.trust.verifyStored(s.manifest, s.manifestSig) || hashFile(path) !== s.manifest.artifact.digest)
          throw new Error('candidate failed verification')
        if (!this.d.host.get(model)) throw new Error('model not served')
        await this.d.runner.start({ ...s, path })
      } catch {
        rmSync(this.modelDir(model), { recursive: true, force: true })
      }
    }
  }

  /**
   * Fetches, verifies, starts and health-checks a candidate, then shadows it.
   * Each step reports its event; the first that fails reports why and ends it.
   */
  async shadow(cmd: ShadowCmd): Promise<EventReport> {
    const { report } = this.d
    const manifest = cmd.manifest
    const base = { cmdId: cmd.id, model: manifest.model, version: manifest.version, artifact: manifest.artifact.digest }
    const fail = failureReporter(report, base)
    const refusal = this.refusal(cmd) ?? (await requirementRefusal(this.d, manifest))
    if (refusal) return fail('rejected', refusal)
    const cur = this.d.runner.get(manifest.model)
    if (cur?.manifest.artifact.digest === manifest.artifact.digest && cur.fraction === cmd.fraction)
      return this.staged({ ...base, message: 'shadowing' })
    report({ ...base, kind: 'received' })
    // A leading dot: never a model id [EF-1.2], so never taken for a candidate by restore().
    const staging = join(this.d.dir, `.next-${manifest.model}`)
    let writer: ArtifactWriter
    try {
      writer = await this.downloadTo(staging, manifest)
    } catch (err) {
      return fail('failed', err)
    }
    report({ ...base, kind: 'downloaded', bytes: manifest.artifact.size, totalBytes: manifest.artifact.size })
    let path: string
    try {
      path = await this.replaceCandidate(manifest.model, staging, writer)
    } catch (err) {
      writer.close()
      return fail('failed', err)
    }
    report({ ...base, kind: 'verified' })
    const failure = await this.startCandidate(cmd, path)
    if (failure) return fail(failure.kind, failure.err)
    return this.staged({ ...base, message: 'shadowing' })
  }

  /** Why this device cannot shadow the candidate (bad manifest, nothing live to compare with). */
  private refusal(cmd: ShadowCmd): Error | undefined {
    const m = cmd.manifest
    const refusal = manifestRefusal(this.d, m, cmd.manifestSig)
    if (refusal) return refusal
    if (!this.d.host.get(m.model))
      return new EdgeFleetError(
        'EF_ERR_INFER_MODEL_NOT_LOADED',
        `${m.model}: a shadow needs a live version to compare with`,
      )
    return undefined
  }

  /**
   * Downloads the artifact straight into a staging folder (as the updater does into
   * its slot), so the current candidate keeps running until the new one is complete.
   */
  private async downloadTo(staging: string, m: Manifest): Promise<ArtifactWriter> {
    if (!ArtifactWriter.resumable(staging, m)) {
      rmSync(staging, { recursive: true, force: true })
      mkdirSync(staging, { recursive: true, mode: 0o700 })
    }
    const writer = ArtifactWriter.open(staging, m, this.d.chunks)
    await download(m, writer, this.d.transport, { window: this.d.fetchWindow, timeoutMs: this.d.downloadTimeoutMs })
    return writer
  }

  /** Stops the current candidate and moves the finished staging folder in its place; returns the model path. */
  private async replaceCandidate(model: string, staging: string, writer: ArtifactWriter): Promise<string> {
    const dir = this.modelDir(model)
    writer.finish()
    await this.d.runner.stop(model)
    rmSync(dir, { recursive: true, force: true })
    renameSync(staging, dir)
    return join(dir, 'model.onnx')
  }

  /**
   * Starts the candidate in its worker and health-checks it; once it passes, saves
   * it for restore(). On failure the candidate is removed and the failure returned.
   */
  private async startCandidate(
    cmd: ShadowCmd,
    path: string,
  ): Promise<{ kind: 'failed' | 'health_failed'; err: unknown } | undefined> {
    const manifest = cmd.manifest
    const dir = this.modelDir(manifest.model)
    try {
      await this.d.runner.start({ manifest: manifest, manifestSig: cmd.manifestSig, path, fraction: cmd.fraction })
    } catch (err) {
      rmSync(dir, { recursive: true, force: true })
      return { kind: 'failed', err: new EdgeFleetError('EF_ERR_MODEL_LOAD_FAILED', (err as Error).message) }
    }
    try {
      await healthCheck((x) => this.d.runner.runOnce(manifest.model, x), manifest)
    } catch (err) {
      await this.d.runner.stop(manifest.model)
      rmSync(dir, { recursive: true, force: true })
      return { kind: 'health_failed', err: healthError(err) }
    }
    const saved: Saved = { manifest: manifest, manifestSig: cmd.manifestSig, fraction: cmd.fraction }
    writeFileSync(join(dir, 'candidate.json'), JSON.stringify(saved))
    return undefined
  }

  /** Reports and returns a 'staged' event (shadowing, or discarded). */
  private staged(ev: Omit<EventReport, 'kind'>): EventReport {
    const staged: EventReport = { ...ev, kind: 'staged' }
    this.d.report(staged)
    return staged
  }

  /** Reports and returns the failure of a promote or discard that names no held candidate. */
  private notFound(base: Omit<EventReport, 'kind'>, what: string): EventReport {
    const ev: EventReport = {
      ...base,
      kind: 'failed',
      code: 'EF_ERR_SHADOW_NOT_FOUND',
      message: `no shadow candidate ${what}`,
    }
    this.d.report(ev)
    return ev
  }

  /** Writes the candidate into the inactive slot and switches to it atomically [EF-4.5]. */
  async promote(cmd: PromoteCmd): Promise<EventReport> {
    const { slots, host, chunks, report } = this.d
    const candidate = this.d.runner.get(cmd.model)
    const base = { cmdId: cmd.id, model: cmd.model, version: cmd.version }
    if (candidate?.manifest.version !== cmd.version) return this.notFound(base, `${cmd.model}@${cmd.version}`)
    const manifest = candidate.manifest
    try {
      const slot = slots.stagingSlot(manifest.model)
      chunks.evacuate(slots.modelPath(manifest.model, slot), new Set(manifest.artifact.chunks.map((x) => x.digest)))
      slots.clear(manifest.model, slot)
      const final = slots.modelPath(manifest.model, slot)
      copyFileSync(candidate.path, `${final}.tmp`)
      const fd = openSync(`${final}.tmp`, 'r+')
      fsyncSync(fd)
      closeSync(fd)
      renameSync(`${final}.tmp`, final)
      slots.writeManifest(manifest.model, slot, manifest, candidate.manifestSig)
      const session = await host.open(final)
      await healthCheck((x) => session.run(x), manifest)
      slots.setActive(manifest.model, slot, manifest.version)
      host.activate(manifest, slot, session)
      chunks.indexSlot(manifest, final)
    } catch (err) {
      const ev: EventReport = {
        ...base,
        kind: 'failed',
        artifact: manifest.artifact.digest,
        code: codeOf(err),
        message: (err as Error).message.slice(0, 2000),
      }
      report(ev)
      return ev
    }
    await this.d.runner.stop(manifest.model)
    rmSync(this.modelDir(manifest.model), { recursive: true, force: true })
    const ev: EventReport = {
      ...base,
      kind: 'activated',
      artifact: manifest.artifact.digest,
      message: 'promoted from shadow',
    }
    report(ev)
    this.d.onChange()
    return ev
  }

  async discard(cmd: DiscardCmd): Promise<EventReport> {
    const c = this.d.runner.get(cmd.model)
    const base = { cmdId: cmd.id, model: cmd.model, ...(cmd.version ? { version: cmd.version } : {}) }
    if (!c || (cmd.version && c.manifest.version !== cmd.version))
      return this.notFound(base, `${cmd.model}${cmd.version ? '@' + cmd.version : ''}`)
    await this.d.runner.stop(cmd.model)
    rmSync(this.modelDir(cmd.model), { recursive: true, force: true })
    return this.staged({ ...base, version: c.manifest.version, message: 'discarded' })
  }
}
