// The embedded broker's listener: plain TCP, or TLS when the hub serves TLS
// [EF-10.2]. The TLS listener asks for a client certificate but does not
// require one: devices with a certificate from the hub CA are identified by it
// at CONNECT [EF-10.3], the others authenticate with their password.
import { createServer as createTcpServer, type Server } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { Socket } from 'node:net'
import { listenOn } from '../listen.js'

export interface BrokerTls {
  cert: Buffer
  key: Buffer
  /** CA device client certificates must chain to. */
  clientCa: Buffer
}

export interface MqttListener {
  server: Server
  port: number
  /** mqtt:// or mqtts:// */
  scheme: 'mqtt' | 'mqtts'
}

/** `handle` takes each accepted connection (aedes' handle, behind the broker's limits [EF-1.7]). */
export async function listenMqtt(
  handle: (socket: Socket) => void,
  host: string,
  port: number,
  tls?: BrokerTls,
): Promise<MqttListener> {
  const server: Server = tls
    ? createTlsServer(
        { cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: false },
        handle,
      )
    : createTcpServer(handle)
  const bound = await listenOn(server, tls ? 'MQTT broker (TLS)' : 'MQTT broker', host, port)
  return { server, port: bound, scheme: tls ? 'mqtts' : 'mqtt' }
}
