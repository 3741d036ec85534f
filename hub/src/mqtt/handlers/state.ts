// ef/v1/dev/{id}/state [EF-2.1]: online/offline and the loaded models.
import { stateCodec } from '@edgefleet/shared'
import type { HandlerContext } from '../dispatch.js'
import { reconcileState } from '../../distribution/reconcile.js'

export function handleState(ctx: HandlerContext, deviceId: string, payload: Buffer): void {
  if (payload.length === 0) return // a cleared retained message
  const state = stateCodec.decode(payload)
  ctx.assertSameDevice(deviceId, state.deviceId)
  const wasOnline = ctx.store.devices.get(deviceId)?.online ?? false
  if (!ctx.store.devices.setState(deviceId, state, ctx.now())) return
  ctx.store.sentVersions.forget(deviceId) // its loaded versions may have changed [EF-2.6.8]
  reconcileState(ctx.store, deviceId, state, ctx.now()) // events this state implies but that were lost [EF-2.1.4]
  // A key announcement goes out before any resent command that is signed with the new key [EF-3.6].
  if (state.online && state.hubKey !== undefined) ctx.onHubKeySeen?.(deviceId, state.hubKey)
  // Only a reconnect resends open commands; state updates while online do not.
  if (state.online && !wasOnline) ctx.onDeviceOnline(deviceId)
}
