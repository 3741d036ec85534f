// ef/v1/dev/{id}/cmd [EF-2.3]: verify the hub's signature, drop duplicates by
// command id (reporting the stored result again), then dispatch by type. A
// hub-key announcement [EF-3.6] is checked against the chain it carries first.
import {
  EdgeFleetError,
  cmdCodec,
  codeOf,
  publicKeyFromText,
  verifyDocument,
  type AgentUpdateCmd,
  type Cmd,
  type HubKeyCmd,
} from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { AgentDb } from '../../store/db.js'
import { storageCode } from '../../store/faults.js'
import { isDeferred, type EventReport, type Updater } from '../../updater/updater.js'
import type { DeferredCmds } from './deferred.js'
import type { HubTrust } from '../../trust.js'

export interface CmdContext {
  deviceId: string
  /** Keys the hub signs with; a command must verify under the current one. */
  trust: HubTrust
  /** Called after the trusted key changed, to report it in the state [EF-3.6]. */
  onTrustChanged?: () => void
  db: AgentDb
  updater: Updater
  log: Logger
  report: (ev: EventReport) => void
  now: () => number
  /** Runtime commands (shadow, promote, discard, capture-policy, conditions) [EF-2.3.4-7]. */
  runtime: (cmd: Exclude<Cmd, { type: 'deploy' | 'rollback' | 'hub-key' | 'agent-update' }>) => Promise<EventReport>
  /** Agent self-update [EF-11.4]; without it the command is refused (EF_ERR_AGENT_UPDATE_UNSUPPORTED). */
  agentUpdate?: (cmd: AgentUpdateCmd) => Promise<EventReport>
  /** Runs a deferred command again after a reconnect or a back-off [EF-2.4.1]; without it the hub's resend does. */
  deferred?: DeferredCmds
}

export async function handleCmd(ctx: CmdContext, payload: Buffer): Promise<void> {
  let cmd: Cmd
  try {
    cmd = cmdCodec.decode(payload)
    if (cmd.type === 'hub-key') {
      acceptHubKey(ctx, cmd)
      return
    }
    const { sig, ...unsigned } = cmd
    if (!ctx.trust.verifyNew(unsigned, sig)) throw new EdgeFleetError('EF_ERR_SIGNATURE_INVALID', `command ${cmd.id}`)
    if (cmd.deviceId !== ctx.deviceId)
      throw new EdgeFleetError('EF_ERR_TOPIC_DEVICE_MISMATCH', `command for ${cmd.deviceId}`)
  } catch (err) {
    const code = codeOf(err)
    ctx.log.warn({ code, err: (err as Error).message }, 'command refused')
    const id = (safeJson(payload) as { id?: unknown; deploymentId?: unknown } | undefined) ?? {}
    ctx.report({
      kind: 'rejected',
      code,
      message: (err as Error).message.slice(0, 2000),
      ...(typeof id.id === 'string' && id.id.length <= 64 ? { cmdId: id.id } : {}),
      ...(typeof id.deploymentId === 'string' && id.deploymentId.length <= 64 ? { deploymentId: id.deploymentId } : {}),
    })
    return
  }
  // [EF-2.3.2] a command runs once; a redelivery only repeats its result. A
  // command left 'running' by a previous process (crash) runs again and resumes.
  if (inProgress.has(cmd.id)) return
  const seen = ctx.db.cmdStatus(cmd.id)
  if (seen?.status === 'done') {
    if (seen.result) ctx.report(JSON.parse(seen.result) as EventReport)
    return
  }
  inProgress.add(cmd.id)
  try {
    logCmd(ctx, cmd.id, 'running', undefined)
    const result =
      cmd.type === 'deploy'
        ? await ctx.updater.deploy(cmd)
        : cmd.type === 'rollback'
          ? await ctx.updater.rollback(cmd)
          : cmd.type === 'agent-update'
            ? await agentUpdate(ctx, cmd)
            : await ctx.runtime(cmd)
    // A deferred command is not done: it stays 'running' (a restart runs it again) and is retried [EF-2.4.1].
    if (isDeferred(result)) {
      ctx.deferred?.schedule(cmd.id, () => {
        handleCmd(ctx, payload).catch((err: unknown) =>
          ctx.log.error({ err: (err as Error).message }, 'deferred command failed'),
        )
      })
      return
    }
    ctx.deferred?.settled(cmd.id)
    logCmd(ctx, cmd.id, 'done', result)
  } finally {
    inProgress.delete(cmd.id)
  }
}

/**
 * Records a command in the log; a disk too full for it does not stop the
 * command [EF-7.3.1]: it runs unrecorded, and a redelivery at worst runs an
 * idempotent command again.
 */
function logCmd(ctx: CmdContext, id: string, status: 'running' | 'done', result: unknown): void {
  try {
    ctx.db.setCmd(id, status, result, ctx.now())
  } catch (err) {
    ctx.log.warn(
      { code: storageCode(err) ?? codeOf(err), cmd: id, err: (err as Error).message },
      'command log write failed',
    )
  }
}

/**
 * [EF-3.6] The announcement is signed with the newest hub key; it counts only
 * if the chain it carries leads from the key trusted now to that key, every
 * step signed by both of its keys. The new key is saved before it is used; an
 * announcement of the key already trusted only acknowledges again.
 */
function acceptHubKey(ctx: CmdContext, cmd: HubKeyCmd): void {
  const { sig, ...unsigned } = cmd
  const before = ctx.trust.current
  if (!verifyDocument(unsigned, sig, publicKeyFromText(ctx.trust.reach(cmd.chain))))
    throw new EdgeFleetError(
      'EF_ERR_HUB_KEY_CHAIN_INVALID',
      `command ${cmd.id}: its chain does not lead from the trusted key ${before} to the key that signed it`,
    )
  if (cmd.deviceId !== ctx.deviceId)
    throw new EdgeFleetError('EF_ERR_TOPIC_DEVICE_MISMATCH', `command for ${cmd.deviceId}`)
  const moved = ctx.trust.advance(cmd.chain)
  if (moved) ctx.onTrustChanged?.()
  ctx.log.info({ from: before, to: ctx.trust.current, moved }, moved ? 'hub key rotated' : 'hub key already current')
  ctx.report({ cmdId: cmd.id, kind: 'received', message: `hub key ${ctx.trust.current}` })
}

function agentUpdate(ctx: CmdContext, cmd: AgentUpdateCmd): Promise<EventReport> {
  if (ctx.agentUpdate) return ctx.agentUpdate(cmd)
  const ev: EventReport = {
    kind: 'rejected',
    cmdId: cmd.id,
    code: 'EF_ERR_AGENT_UPDATE_UNSUPPORTED',
    message: 'this agent has no self-update (embedded as a library)',
  }
  ctx.report(ev)
  return Promise.resolve(ev)
}

/** Commands executing in this process (redeliveries during a run are ignored). */
const inProgress = new Set<string>()

function safeJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'))
  } catch {
    return undefined
  }
}
