// Deployments: resolve the target, make sure every profile has a build, and
// send each device a signed deploy command [EF-2.3]. Devices that are offline
// get it from their persistent session, and again when they come back online.
// A plain deployment holds a device's command until its profile's maintenance
// window is open and its conditions hold, unless asked for `now` [EF-8.16].
import { randomUUID, type KeyObject } from 'node:crypto'
import {
  EdgeFleetError,
  PROTOCOL_VERSION,
  defined,
  cmdCodec,
  signDocument,
  topics,
  type DeployCmd,
  type FirmwareProfile,
} from '@edgefleet/shared'
import type { Logger } from 'pino'
import {
  HELD_STATES,
  type HubStore,
  type BuildRow,
  type DeploymentRow,
  type DeploymentDeviceRow,
  type DeviceRow,
  type VersionRow,
} from '../store/index.js'
import type { Builder } from '../build/builder.js'
import { HoldClock, type Hold } from './hold.js'
import { parseTarget } from './target.js'

export interface DeployerDeps {
  store: HubStore
  builder: Builder
  /** Profiles by id: their maintenance windows and conditions hold plain deployments [EF-8.16]. */
  profiles: ReadonlyMap<string, FirmwareProfile>
  /** Send every plain deployment at once, as if each asked for `now` (a lab or test bench). Default false. */
  immediate?: boolean
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

export interface DeployRequest {
  model: string
  version: string
  target: string
  rollback?: boolean
  /** Send at once, whatever the devices' windows and conditions [EF-8.16]. */
  now?: boolean
}

/** One device's row at creation: held, pending (sent right after), or failed (no build). */
type NewAssignment = Parameters<HubStore['deployments']['create']>[1][number]

export class Deployer {
  constructor(private readonly deps: DeployerDeps) {}

  /** A plain deployment (API, CLI): honours maintenance windows and conditions unless `now` [EF-8.16]. */
  async deploy(req: DeployRequest): Promise<DeploymentRow> {
    const target = parseTarget(req.target)
    this.version(req)
    const devices = this.deps.store.devices.select(target)
    if (devices.length === 0) throw new EdgeFleetError('EF_ERR_TARGET_EMPTY', req.target)
    return this.deployTo(devices, req, { hold: !(req.now === true || this.deps.immediate === true) })
  }

  /**
   * Deploys to an explicit device list as one deployment (one broadcast per artifact); rollouts use
   * it for a wave's due devices [EF-8.3], having applied their own schedule, so nothing is held by default.
   */
  async deployTo(devices: DeviceRow[], req: DeployRequest, opts: { hold?: boolean } = {}): Promise<DeploymentRow> {
    const { store, now } = this.deps
    const version = this.version(req)
    if (devices.length === 0) throw new EdgeFleetError('EF_ERR_TARGET_EMPTY', req.target)
    const builds = await this.buildsFor(version, devices)
    const deployment: DeploymentRow = {
      id: randomUUID(),
      model: req.model,
      version: req.version,
      target: req.target,
      rollback: req.rollback ?? false,
      createdAt: now(),
    }
    const clock = opts.hold ? new HoldClock(this.deps.profiles, deployment.createdAt) : undefined
    const assignments = devices.map((d) => newAssignment(d, buildOf(builds, d), clock?.holdFor(d) ?? null))
    // An older held deploy of the model is never released after this one [EF-8.16].
    store.deployments.supersedeHeld(
      req.model,
      devices.map((d) => d.id),
      deployment.id,
      deployment.createdAt,
    )
    store.deployments.create(deployment, assignments)
    const due = devices.filter((_, i) => assignments[i].state === 'pending')
    await Promise.all(due.map((d) => this.send(deployment, d.id, buildOf(builds, d))))
    this.deps.log.info(
      {
        deployment: deployment.id,
        model: req.model,
        version: req.version,
        devices: devices.length,
        held: assignments.filter((a) => HELD_STATES.has(a.state)).length,
      },
      'deployment created',
    )
    return deployment
  }

  private version(req: DeployRequest): VersionRow {
    const found = this.deps.store.registry.getVersion(req.model, req.version)
    if (!found) throw new EdgeFleetError('EF_ERR_MODEL_NOT_FOUND', `${req.model}@${req.version}`)
    return found
  }

  /** The build of the version for each profile among the devices, made now when missing. */
  private async buildsFor(version: VersionRow, devices: DeviceRow[]): Promise<Map<string, BuildRow>> {
    const builds = new Map<string, BuildRow>()
    for (const p of new Set(devices.map((d) => d.profile))) builds.set(p, await this.deps.builder.ensure(version, p))
    return builds
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
    // A held assignment was never sent: it waits for its window, not for the device [EF-8.16].
    for (const a of this.deps.store.deployments.openForDevice(deviceId))
      if (!HELD_STATES.has(a.state)) await this.resend(a)
  }

  /** Resends one open assignment with its original command id (reconnects, reconciliation [EF-2.1.4]). */
  async resend(a: Pick<DeploymentDeviceRow, 'deploymentId' | 'deviceId' | 'buildId' | 'cmdId'>): Promise<void> {
    const d = this.deps.store.deployments.get(a.deploymentId)
    const b = a.buildId !== null ? this.deps.store.registry.getBuildById(a.buildId) : undefined
    if (d && b) await this.send(d, a.deviceId, b, a.cmdId ?? undefined)
  }
}

const buildOf = (builds: Map<string, BuildRow>, d: DeviceRow): BuildRow =>
  defined(builds.get(d.profile), `build for profile ${d.profile}`)

/** A device's assignment: failed without a build, held with a reason, else pending (sent at once). */
function newAssignment(device: DeviceRow, build: BuildRow, hold: Hold | null): NewAssignment {
  if (build.status !== 'ok')
    return {
      deviceId: device.id,
      buildId: build.id,
      cmdId: null,
      state: 'failed',
      code: build.errorCode ?? 'EF_ERR_BUILD_FAILED',
      message: build.error ?? undefined,
    }
  if (hold) return { deviceId: device.id, buildId: build.id, cmdId: null, state: hold.state, message: hold.message }
  return { deviceId: device.id, buildId: build.id, cmdId: null, state: 'pending' }
}
