// The hub's signing key [EF-3.6]: who may read it, and its rotation (admin).
// A rotation is announced at once to every active device; a device that was
// offline gets it when its next state report names the old key.
import type { FastifyPluginAsync } from 'fastify'
import { Type } from '@sinclair/typebox'
import { EdgeFleetError, KeyRotation, PublicKeyText } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import { announceKey } from '../../keys.js'

const KeyOut = Type.Object({ publicKey: PublicKeyText, chain: Type.Array(KeyRotation) })

export const hubKeyRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.get('/api/v1/hub/key', { schema: { response: { 200: KeyOut } } }, async () => ({
    publicKey: deps.keys.publicKey,
    chain: [...deps.keys.chain],
  }))

  app.post(
    '/api/v1/hub/rotate-key',
    {
      config: { role: 'admin' },
      schema: {
        response: {
          200: Type.Object({
            publicKey: PublicKeyText,
            previousKey: PublicKeyText,
            /** Active devices the announcement was sent to now (online or queued by the broker). */
            announced: Type.Integer(),
          }),
        },
      },
    },
    async (req) => {
      const commands = deps.commands
      if (!commands) throw new EdgeFleetError('EF_ERR_INTERNAL', 'command sender not configured')
      const step = deps.keys.rotate(deps.now())
      req.log.warn({ from: step.prev, to: step.next, by: req.principal?.name }, 'hub signing key rotated')
      const devices = activeDeviceIds(deps)
      await Promise.all(devices.map((id) => announceKey(commands, deps.keys, id, deps.log)))
      return { publicKey: step.next, previousKey: step.prev, announced: devices.length }
    },
  )
}

function activeDeviceIds(deps: ApiDeps): string[] {
  return deps.store.devices
    .list(1_000_000, 0)
    .filter((d) => d.status === 'active')
    .map((d) => d.id)
}
