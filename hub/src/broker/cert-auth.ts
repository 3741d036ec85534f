// Device identity from a TLS client certificate [EF-10.3]: the embedded
// broker's TLS listener verifies the chain against the hub CA; here the
// certificate's CN must name a provisioned, enabled device (the same store
// lookup passwords use), and the client id and user name must agree with it.
import type { TLSSocket } from 'node:tls'
import type { Client } from 'aedes'
import { isValidId } from '@edgefleet/shared'

export type CertIdentity =
  /** No certificate presented (plain TCP, or TLS without one): authenticate by password. */
  { kind: 'none' } | { kind: 'device'; deviceId: string } | { kind: 'refused'; reason: string; cn?: string }

export function certIdentity(
  client: Client,
  username: string | undefined,
  isEnabledDevice: (deviceId: string) => boolean,
): CertIdentity {
  const socket = (client as unknown as { conn?: Partial<TLSSocket> }).conn
  if (typeof socket?.getPeerCertificate !== 'function') return { kind: 'none' }
  const cert = socket.getPeerCertificate()
  if (!cert || Object.keys(cert).length === 0) return { kind: 'none' }
  const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined
  if (!socket.authorized)
    return {
      kind: 'refused',
      cn,
      reason: `certificate not issued by the hub CA (${String(socket.authorizationError)})`,
    }
  if (!cn || !isValidId(cn)) return { kind: 'refused', cn, reason: 'certificate CN is not a device id' }
  if (client.id !== cn || (username !== undefined && username !== cn))
    return { kind: 'refused', cn, reason: 'client id or user name differs from the certificate CN' }
  if (!isEnabledDevice(cn)) return { kind: 'refused', cn, reason: 'no provisioned, enabled device with this id' }
  return { kind: 'device', deviceId: cn }
}
