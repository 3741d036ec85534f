// The embedded broker's listener: plain TCP, or TLS when the hub serves TLS
// [EF-10.2]. The TLS listener asks for a client certificate but does not
// require one: devices with a certificate from the hub CA are identified by it
// at CONNECT [EF-10.3], the others authenticate with their password.
import { createServer as createTcpServer, type Server } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { Aedes } from 'aedes'
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

export async function listenMqtt(aedes: Aedes, host: string, port: number, tls?: BrokerTls): Promise<MqttListener> {
  const server: Server = tls
    ? createTlsServer(
        { cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: false },
        aedes.handle,
      )
    : createTcpServer(aedes.handle)
  const bound = await listenOn(server, tls ? 'MQTT broker (TLS)' : 'MQTT broker', host, port)
  return { server, port: bound, scheme: tls ? 'mqtts' : 'mqtt' }
}
