// Deployments: resolve the target, make sure every profile has a build, and
// send each device a signed deploy command [EF-2.3]. Devices that are offline
// get it from their persistent session, and again when they come back online.
import { randomUUID, type KeyObject } from 'node:crypto'
import {
  EdgeFleetError,
  PROTOCOL_VERSION,
  defined,
  cmdCodec,
  signDocument,
  topics,
  type DeployCmd,
} from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { HubStore, BuildRow, DeploymentRow, DeploymentDeviceRow, DeviceRow } from '../store/index.js'
import type { Builder } from '../build/builder.js'
import { parseTarget } from './target.js'

export interface DeployerDeps {
  store: HubStore
  builder: Builder
  /** The hub's current signing key, read at each signature (it changes on rotation, EF-3.6). */
  keys: { readonly privateKey: KeyObject }
  log: Logger
  now: () => number
  publish: (topic: string, payload: Buffer) => Promise<void>
  /** The hub's HTTP base URL for artifact downloads, when it serves them. */
  httpBase?: () => string | undefined
  /** The artifact origin's base URL (--artifact-url), sent in every deploy command [EF-4.13]. */
  artifactBase?: string
}

export class Deployer {
  constructor(private readonly deps: DeployerDeps) {}

  async deploy(req: { model: string; version: string; target: string; rollback?: boolean }): Promise<DeploymentRow> {
    const { store } = this.deps
    const target = parseTarget(req.target)
    const v = store.registry.getVersion(req.model, req.version)
    if (!v) throw new EdgeFleetError('EF_ERR_MODEL_NOT_FOUND', `${req.model}@${req.version}`)
    const devices = store.devices.select(target)
    if (devices.length === 0) throw new EdgeFleetError('EF_ERR_TARGET_EMPTY', req.target)
    return this.deployTo(devices, req)
  }

  /**
   * Deploys to an explicit device list as one deployment (one broadcast per
   * artifact); rollouts use it for a wave's due devices [EF-8.3].
   */
  async deployTo(
    devices: DeviceRow[],
    req: { model: string; version: string; target: string; rollback?: boolean },
  ): Promise<DeploymentRow> {
    const { store, builder, now } = this.deps
    const v = store.registry.getVersion(req.model, req.version)
    if (!v) throw new EdgeFleetError('EF_ERR_MODEL_NOT_FOUND', `${req.model}@${req.version}`)
    if (devices.length === 0) throw new EdgeFleetError('EF_ERR_TARGET_EMPTY', req.target)
    const builds = new Map<string, BuildRow>()
    for (const p of new Set(devices.map((d) => d.profile))) builds.set(p, await builder.ensure(v, p))
    const deployment: DeploymentRow = {
      id: randomUUID(),
      model: req.model,
      version: req.version,
      target: req.target,
      rollback: req.rollback ?? false,
      createdAt: now(),
    }
    const buildFor = (d: DeviceRow) => defined(builds.get(d.profile), `build for profile ${d.profile}`)
    const assignments = devices.map((d) => {
      const build = buildFor(d)
      return build.status === 'ok'
        ? { deviceId: d.id, buildId: build.id, cmdId: null, state: 'pending' as const }
        : {
            deviceId: d.id,
            buildId: build.id,
            cmdId: null,
            state: 'failed' as const,
            code: build.errorCode ?? 'EF_ERR_BUILD_FAILED',
            message: build.error ?? undefined,
          }
    })
    store.deployments.create(deployment, assignments)
    const due = devices.filter((_, i) => assignments[i].state === 'pending')
    await Promise.all(due.map((d) => this.send(deployment, d.id, buildFor(d))))
    this.deps.log.info(
      { deployment: deployment.id, model: req.model, version: req.version, devices: devices.length },
      'deployment created',
    )
    return deployment
  }

  private async send(
    deployment: DeploymentRow,
    deviceId: string,
    build: BuildRow,
    cmdId: string = randomUUID(),
  ): Promise<void> {
    if (!build.manifest || !build.manifestSig) return
    const unsigned: Omit<DeployCmd, 'sig'> = {
      v: PROTOCOL_VERSION,
      id: cmdId,
      deviceId,
      issuedAt: this.deps.now(),
      type: 'deploy',
      deploymentId: deployment.id,
      manifest: build.manifest,
      // Signed now rather than at build time, so a build made before a key rotation reaches agents under the new key [EF-3.6].
      manifestSig: signDocument(build.manifest, this.deps.keys.privateKey),
      ...(deployment.rollback ? { rollback: true } : {}),
      ...(this.deps.httpBase?.() ? { httpBase: this.deps.httpBase() } : {}),
      ...(this.deps.artifactBase ? { artifactBase: this.deps.artifactBase } : {}),
    }
    const cmd = cmdCodec.check({ ...unsigned, sig: signDocument(unsigned, this.deps.keys.privateKey) })
    this.deps.store.deployments.setSent(deployment.id, deviceId, cmdId, this.deps.now())
    await this.deps.publish(topics.cmd(deviceId), cmdCodec.encode(cmd))
  }

  /**
   * A device came online: resend its open assignments with their original
   * command ids, so an agent that already ran one only reports again [EF-2.3.2].
   */
  async resendOpen(deviceId: string): Promise<void> {
    for (const a of this.deps.store.deployments.openForDevice(deviceId)) await this.resend(a)
  }

  /** Resends one open assignment with its original command id (reconnects, reconciliation [EF-2.1.4]). */
  async resend(a: Pick<DeploymentDeviceRow, 'deploymentId' | 'deviceId' | 'buildId' | 'cmdId'>): Promise<void> {
    const d = this.deps.store.deployments.get(a.deploymentId)
    const b = a.buildId !== null ? this.deps.store.registry.getBuildById(a.buildId) : undefined
    if (d && b) await this.send(d, a.deviceId, b, a.cmdId ?? undefined)
  }
}
