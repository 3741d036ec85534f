// ef/v1/dev/{id}/fetch [EF-2.7]: a device asks for chunks it misses.
import { fetchCodec } from '@edgefleet/shared'
import type { HandlerContext } from '../dispatch.js'

export function handleFetch(ctx: HandlerContext, deviceId: string, payload: Buffer): void {
  const req = fetchCodec.decode(payload)
  ctx.assertSameDevice(deviceId, req.deviceId)
  ctx.onFetch(req)
}
