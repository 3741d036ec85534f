// Signed runtime commands to one device [EF-2.3]: shadow, promote, discard,
// capture-policy and conditions. Like deploy commands they are signed with the
// hub's key over their canonical JSON and sent QoS 1 on the device's cmd topic.
import { randomUUID, type KeyObject } from 'node:crypto'
import {
  PROTOCOL_VERSION,
  EdgeFleetError,
  cmdCodec,
  signDocument,
  topics,
  type CapturePolicy,
  type Cmd,
  type KeyRotation,
} from '@edgefleet/shared'
import type { HubStore } from '../store/index.js'

export interface CommandSenderDeps {
  store: HubStore
  /** The hub's current signing key, read at each signature (it changes on rotation, EF-3.6). */
  keys: { readonly privateKey: KeyObject }
  now: () => number
  publish: (topic: string, payload: Buffer) => Promise<void>
}

type Body<T extends Cmd['type']> = Omit<
  Extract<Cmd, { type: T }>,
  'v' | 'id' | 'deviceId' | 'issuedAt' | 'sig' | 'type'
>

export class CommandSender {
  constructor(private readonly d: CommandSenderDeps) {}

  private device(deviceId: string) {
    const dev = this.d.store.devices.get(deviceId)
    if (!dev) throw new EdgeFleetError('EF_ERR_DEVICE_NOT_FOUND', deviceId)
    return dev
  }

  /**
   * Signs and publishes; resolves with the command id once the broker took it.
   * `id` resends a command with its original id (the agent runs it at most once, EF-2.3.2).
   */
  async send<T extends Exclude<Cmd['type'], 'deploy' | 'rollback'>>(
    deviceId: string,
    type: T,
    body: Body<T>,
    id: string = randomUUID(),
  ): Promise<string> {
    this.device(deviceId)
    const unsigned = { v: PROTOCOL_VERSION, id, deviceId, issuedAt: this.d.now(), type, ...body }
    const cmd = cmdCodec.check({ ...unsigned, sig: signDocument(unsigned, this.d.keys.privateKey) })
    await this.d.publish(topics.cmd(deviceId), cmdCodec.encode(cmd))
    return cmd.id
  }

  /** Shadow a registered version on a device: the build for the device's profile must exist [EF-2.3.4]. */
  shadow(deviceId: string, model: string, version: string, fraction: number): Promise<string> {
    const dev = this.device(deviceId)
    const build = this.d.store.registry.getBuild(model, version, dev.profile)
    if (!build)
      throw new EdgeFleetError(
        this.d.store.registry.getVersion(model, version) ? 'EF_ERR_BUILD_NOT_FOUND' : 'EF_ERR_MODEL_NOT_FOUND',
        `${model}@${version} for ${dev.profile}`,
      )
    if (build.status !== 'ok' || !build.manifest || !build.manifestSig)
      throw new EdgeFleetError(
        'EF_ERR_BUILD_NOT_FOUND',
        `${model}@${version} has no successful build for ${dev.profile}`,
      )
    // Signed now, not at build time: a build older than a key rotation still verifies [EF-3.6].
    const manifestSig = signDocument(build.manifest, this.d.keys.privateKey)
    return this.send(deviceId, 'shadow', { manifest: build.manifest, manifestSig, fraction })
  }

  /** Announces the hub's current key with the chain of rotations that leads to it [EF-3.6]. */
  announceKey(deviceId: string, chain: readonly KeyRotation[]): Promise<string> {
    return this.send(deviceId, 'hub-key', { chain: [...chain] })
  }

  promote(deviceId: string, model: string, version: string): Promise<string> {
    return this.send(deviceId, 'promote', { model, version })
  }

  discard(deviceId: string, model: string, version?: string): Promise<string> {
    return this.send(deviceId, 'discard', { model, ...(version ? { version } : {}) })
  }

  capturePolicy(deviceId: string, policies: CapturePolicy[]): Promise<string> {
    return this.send(deviceId, 'capture-policy', { policies })
  }

  conditions(deviceId: string, c: Body<'conditions'>): Promise<string> {
    return this.send(deviceId, 'conditions', c)
  }
}
