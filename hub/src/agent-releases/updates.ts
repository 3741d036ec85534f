// Agent updates [EF-11.4, EF-11.9]: sends each device a signed agent-update
// command for the release of its architecture (the profile's, or the one
// asked for), records every command in the store, resends the open ones with
// their original id when the device comes back or has not moved for a while
// (the agent runs a command id at most once, EF-2.3.2), and settles those the
// device handed over but never reported on once their deadline is past.
// `agent update` and agent rollouts both send through here.
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { EdgeFleetError, codeOf, signDocument, type AgentPackageArch, type AgentRelease } from '@edgefleet/shared'
import type { AgentUpdateRow, DeviceRow } from '../store/index.js'
import type { CommandSender } from '../distribution/commands.js'
import { parseTarget } from '../distribution/target.js'
import { PROFILE_ARCH, type AgentReleaseDeps } from './releases.js'

/** Default time a new agent has to start, reconnect and pass its health check [EF-11.7]; `hub start --agent-deadline-ms`. */
export const DEFAULT_AGENT_DEADLINE_MS = 120_000 // 2 minutes
/** The deadlines an agent-update command may carry (its schema's bounds): 1 s to 1 hour. */
const AGENT_DEADLINE_BOUNDS_MS = [1000, 3_600_000] as const

/** The hub's default confirm deadline, checked once at start (EF_ERR_CONFIG_INVALID outside 1 s - 1 h). */
export function checkAgentDeadline(ms: number): number {
  const [least, most] = AGENT_DEADLINE_BOUNDS_MS
  if (!Number.isInteger(ms) || ms < least || ms > most)
    throw new EdgeFleetError(
      'EF_ERR_CONFIG_INVALID',
      `agent confirm deadline ${ms} ms: give a whole number of ms from ${least} to ${most}`,
    )
  return ms
}
/**
 * Past its deadline the launcher restores the old agent, which reconnects and
 * reports: the hub waits this much longer before it gives a handed-over update up [EF-11.9].
 */
const CONFIRM_GRACE_MS = 30_000

export interface AgentUpdateDeps extends Omit<AgentReleaseDeps, 'blobs'> {
  commands: Pick<CommandSender, 'send'>
  log: Logger
  /** The hub address devices download packages from when no request names one (rollouts, resends). */
  httpBase: () => string
  /** Confirm deadline of an update that names none (agent rollouts, `agent update` without --deadline-ms), ms. */
  defaultDeadlineMs?: number
}

interface AgentUpdateRequest {
  target: string
  version: string
  rollback?: boolean
  deadlineMs?: number
  /** Send this architecture's release whatever the profiles say. */
  arch?: AgentPackageArch
}

type AgentSendOptions = Omit<AgentUpdateRequest, 'target'> & {
  /** Who sends: `update` or `rollout:<id>#<wave>`. */
  origin: string
  httpBase?: string
}

interface AgentUpdateResult {
  /** The batch these commands belong to (AgentUpdateStore.batch). */
  batch: string
  sent: { device: string; arch: string; cmdId: string }[]
  skipped: { device: string; code: string; message: string }[]
}

export class AgentUpdates {
  private timer?: NodeJS.Timeout

  constructor(private readonly deps: AgentUpdateDeps) {}

  /** `agent update --target`: every active device the target selects. */
  sendTarget(req: AgentUpdateRequest, httpBase?: string): Promise<AgentUpdateResult> {
    const devices = this.deps.store.devices.select(parseTarget(req.target))
    return this.sendTo(devices, { ...req, origin: 'update', ...(httpBase ? { httpBase } : {}) })
  }

  /** Sends the signed agent-update command to each device; one that cannot get it is skipped with its code. */
  async sendTo(devices: readonly DeviceRow[], opts: AgentSendOptions): Promise<AgentUpdateResult> {
    const { store } = this.deps
    if (!store.agentReleases.list().some((row) => row.release.version === opts.version))
      throw new EdgeFleetError('EF_ERR_AGENT_RELEASE_NOT_FOUND', `agent ${opts.version}`)
    const out: AgentUpdateResult = { batch: randomUUID(), sent: [], skipped: [] }
    for (const device of devices) {
      try {
        const arch = this.archOf(device, opts.arch)
        if (!store.agentReleases.get(opts.version, arch))
          throw new EdgeFleetError('EF_ERR_AGENT_RELEASE_NOT_FOUND', `agent ${opts.version} for ${arch}`)
        const row = {
          cmdId: randomUUID(),
          batch: out.batch,
          origin: opts.origin,
          deviceId: device.id,
          version: opts.version,
          arch,
          rollback: opts.rollback ?? false,
          deadlineMs: opts.deadlineMs ?? this.deps.defaultDeadlineMs ?? DEFAULT_AGENT_DEADLINE_MS,
          httpBase: opts.httpBase ?? this.deps.httpBase(),
          sentAt: this.deps.now(),
        }
        // Recorded before it is published: a device that is offline gets it when it comes back [EF-11.9].
        store.agentUpdates.insert(row)
        await this.publish(row)
        out.sent.push({ device: device.id, arch, cmdId: row.cmdId })
      } catch (err) {
        out.skipped.push({ device: device.id, code: codeOf(err), message: (err as Error).message })
      }
    }
    return out
  }

  private archOf(device: DeviceRow, asked?: AgentPackageArch): AgentPackageArch {
    if (asked) return asked
    const profileArch = this.deps.profiles.get(device.profile)?.arch
    if (!profileArch) throw new EdgeFleetError('EF_ERR_PROFILE_UNKNOWN', `${device.profile}: say --arch`)
    return PROFILE_ARCH[profileArch]
  }

  /** Signs (now, with the current key [EF-3.6]) and publishes the command of `row` under its own id. */
  private async publish(row: Omit<AgentUpdateRow, 'state' | 'code' | 'message' | 'stagedAt' | 'updatedAt'>) {
    const registered = this.deps.store.agentReleases.get(row.version, row.arch)?.release
    if (!registered) throw new EdgeFleetError('EF_ERR_AGENT_RELEASE_NOT_FOUND', `agent ${row.version} for ${row.arch}`)
    const release = this.forDevice(registered, row.deviceId)
    await this.deps.commands.send(
      row.deviceId,
      'agent-update',
      {
        release,
        releaseSig: signDocument(release, this.deps.keys.privateKey),
        ...(row.rollback ? { rollback: true } : {}),
        deadlineMs: row.deadlineMs,
        url: `/api/v1/agent-releases/${release.version}/${row.arch}/package`,
        httpBase: row.httpBase,
      },
      row.cmdId,
    )
  }

  /**
   * The release as this device can take it [EF-11.4]: with its chunk list
   * (received by broadcast) only when the device's state says its agent
   * receives agent packages by chunks; an older agent's schema has no
   * `chunks` and would refuse the command, so it gets the HTTP form.
   */
  private forDevice(release: AgentRelease, deviceId: string): AgentRelease {
    if (!release.chunks || this.deps.store.devices.get(deviceId)?.state?.agentChunks === true) return release
    const { name, version, arch, runtime, sha256, size } = release
    return { name, version, arch, runtime, sha256, size }
  }

  /**
   * A device came back: its updates it may never have got (sent, received)
   * go out again with their original ids [EF-11.9, EF-2.3.2]. A staged one is
   * not: the device has it and is handing over.
   */
  async resendOpen(deviceId: string): Promise<void> {
    for (const row of this.deps.store.agentUpdates.openForDevice(deviceId))
      if (row.state !== 'staged') await this.resend(row)
  }

  private async resend(row: AgentUpdateRow): Promise<void> {
    this.deps.store.agentUpdates.touch(row.cmdId, this.deps.now())
    await this.publish(row)
  }

  /** Finished updates of a batch, by device, in the terms of deployment states (activated, rejected, failed). */
  finished(batch: string): Map<string, { state: string; code: string | null }> {
    const out = new Map<string, { state: string; code: string | null }>()
    for (const row of this.deps.store.agentUpdates.batch(batch)) {
      if (row.state === 'updated') out.set(row.deviceId, { state: 'activated', code: null })
      else if (row.state === 'rolled_back')
        out.set(row.deviceId, { state: 'failed', code: row.code ?? 'EF_ERR_AGENT_ROLLED_BACK' })
      else if (row.state === 'rejected' || row.state === 'failed')
        out.set(row.deviceId, { state: row.state, code: row.code })
    }
    return out
  }

  /**
   * The periodic pass [EF-11.9]: an open update of an online device idle for
   * `idleMs` is resent; a staged one past its deadline and grace is settled
   * from the device's state (running the new version: confirmed) or given up.
   */
  async tick(idleMs: number): Promise<void> {
    const { store, now } = this.deps
    const nowMs = now()
    for (const row of store.agentUpdates.idleOpen(nowMs - idleMs)) {
      const device = store.devices.get(row.deviceId)
      if (row.state === 'staged') this.settle(row, device, nowMs)
      else if (device?.online)
        await this.resend(row).catch((err: unknown) =>
          this.deps.log.warn({ device: row.deviceId, err: (err as Error).message }, 'agent update resend failed'),
        )
    }
  }

  private settle(row: AgentUpdateRow, device: DeviceRow | undefined, nowMs: number): void {
    if (nowMs < (row.stagedAt ?? row.sentAt) + row.deadlineMs + CONFIRM_GRACE_MS) return
    const { agentUpdates } = this.deps.store
    // Past the deadline the launcher's watchdog has restored an unconfirmed agent: running the new one means confirmed [EF-11.7].
    if (device?.online && device.state?.agentVersion === row.version)
      agentUpdates.setState(row.cmdId, 'updated', null, 'confirmed: the device runs it past its deadline', nowMs)
    else
      agentUpdates.setState(
        row.cmdId,
        'failed',
        'EF_ERR_AGENT_CONFIRM_TIMEOUT',
        `no confirmation or rollback report within ${row.deadlineMs} ms (+${CONFIRM_GRACE_MS} ms)`,
        nowMs,
      )
  }

  /** Runs tick(idleMs) every idleMs / 2 (at least every second) until close(). */
  start(idleMs: number): void {
    this.timer = setInterval(
      () =>
        void this.tick(idleMs).catch((err: unknown) =>
          this.deps.log.warn({ err: (err as Error).message }, 'agent update pass failed'),
        ),
      Math.max(1000, idleMs / 2),
    )
    this.timer.unref()
  }

  close(): void {
    clearInterval(this.timer)
  }
}
