// ef/v1/dev/{id}/cmd [EF-2.3]: verify the hub's signature, drop duplicates by
// command id (reporting the stored result again), then dispatch by type.
import type { KeyObject } from 'node:crypto'
import { EdgeFleetError, cmdCodec, codeOf, verifyDocument, type Cmd } from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { AgentDb } from '../../store/db.js'
import type { EventReport, Updater } from '../../updater/updater.js'

export interface CmdContext {
  deviceId: string
  hubKey: KeyObject
  db: AgentDb
  updater: Updater
  log: Logger
  report: (ev: EventReport) => void
  now: () => number
  /** Runtime commands (shadow, promote, discard, capture-policy, conditions) [EF-2.3.4-7]. */
  runtime: (cmd: Exclude<Cmd, { type: 'deploy' | 'rollback' }>) => Promise<EventReport>
}

export async function handleCmd(ctx: CmdContext, payload: Buffer): Promise<void> {
  let cmd: Cmd
  try {
    cmd = cmdCodec.decode(payload)
    const { sig, ...unsigned } = cmd
    if (!verifyDocument(unsigned, sig, ctx.hubKey))
      throw new EdgeFleetError('EF_ERR_SIGNATURE_INVALID', `command ${cmd.id}`)
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
    ctx.db.setCmd(cmd.id, 'running', undefined, ctx.now())
    const result =
      cmd.type === 'deploy'
        ? await ctx.updater.deploy(cmd)
        : cmd.type === 'rollback'
          ? await ctx.updater.rollback(cmd)
          : await ctx.runtime(cmd)
    ctx.db.setCmd(cmd.id, 'done', result, ctx.now())
  } finally {
    inProgress.delete(cmd.id)
  }
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
