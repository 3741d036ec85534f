// Bounded resources at the embedded broker's door [EF-1.7]: the largest packet
// a connection may announce (checked on the fixed header, before aedes' parser
// buffers the packet), a byte budget before authentication, connections per
// source address and unauthenticated connections at once. Everything here sits
// on the read path of every connection, chunk fan-out acknowledgements
// included, so it inspects the buffers aedes reads without copying them and
// costs a few operations per packet, not per byte.
import type { Socket } from 'node:net'
import { cmdCodec, DEFAULT_CHUNK_SIZE, sampleCodec, stateCodec } from '@edgefleet/shared'
import type { Logger } from 'pino'

/** Room for a topic, packet id and MQTT headers around a payload. */
const HEADER_ROOM = 4096

export interface BrokerLimitOptions {
  /** Largest packet, and largest byte count, a connection may send before it is authenticated: a CONNECT with a state-sized will plus credentials. */
  maxConnectBytes: number
  /** Largest packet an authenticated device or feed consumer may send: the largest message a device publishes (a sample) plus headers. */
  maxPacketBytes: number
  /** Largest packet the hub's own client may send: a command with its manifest, or a chunk, plus headers. */
  maxHubPacketBytes: number
  /** A connection that has not sent a complete CONNECT by then is closed, ms (aedes' connectTimeout). */
  connectTimeoutMs: number
  /** Open connections from one source address; 0 = unlimited. */
  maxConnectionsPerAddress: number
  /** Whether loopback addresses (127.0.0.0/8, ::1) are exempt from the per-address limit: local simulators and tests connect thousands of devices from there. */
  loopbackExempt: boolean
  /** Connections accepted but not yet authenticated, at once; 0 = unlimited. */
  maxUnauthenticated: number
  /** Largest retained payload kept, bytes; only a device's state topic is retained [EF-1.7.4]. */
  maxRetainedBytes: number
}

export const defaultBrokerLimits: Readonly<BrokerLimitOptions> = Object.freeze({
  maxConnectBytes: stateCodec.maxBytes + 16 * 1024, // 80 KiB
  maxPacketBytes: sampleCodec.maxBytes + HEADER_ROOM, // 2 MiB + 4 KiB
  maxHubPacketBytes: Math.max(cmdCodec.maxBytes, DEFAULT_CHUNK_SIZE) + HEADER_ROOM, // 9 MiB + 4 KiB
  connectTimeoutMs: 10_000,
  maxConnectionsPerAddress: 64,
  loopbackExempt: true,
  maxUnauthenticated: 1024,
  maxRetainedBytes: 16 * 1024, // a state naming 64 loaded models fits
})

/** Refusal codes the broker counts, by code [EF-1.7]. */
type BrokerRefusals = Record<string, number>

/** What /metrics reads of the broker's limits. */
export interface BrokerLimitStats {
  readonly refusals: Readonly<BrokerRefusals>
  readonly throttled: number
}

const HEADER = 0
const LENGTH = 1

/**
 * Follows MQTT packet boundaries through the byte stream of one connection
 * (fixed header, remaining length, body skipped) and says when a packet
 * announces more than the connection may send [EF-1.7.1].
 */
export class PacketGuard {
  /** Bytes left that may be read before authentication; Infinity once authenticated. */
  private preAuthLeft: number
  private state = HEADER
  private bodyLeft = 0
  private length = 0
  private multiplier = 1
  private lengthBytes = 0

  constructor(private limit: number) {
    this.preAuthLeft = limit
  }

  /** The connection authenticated: from now on packets up to `maxPacketBytes`. */
  authenticated(maxPacketBytes: number): void {
    this.limit = maxPacketBytes
    this.preAuthLeft = Infinity
  }

  /** Returns a refusal code when `buf` (the next bytes of the stream) breaks a limit. */
  inspect(buf: Buffer): string | undefined {
    if (this.preAuthLeft !== Infinity) {
      this.preAuthLeft -= buf.length
      if (this.preAuthLeft < 0) return 'EF_ERR_BROKER_PACKET_TOO_LARGE'
    }
    let at = 0
    const n = buf.length
    while (at < n) {
      if (this.bodyLeft > 0) {
        const step = Math.min(this.bodyLeft, n - at)
        this.bodyLeft -= step
        at += step
      } else if (this.state === HEADER) {
        at++ // packet type and flags: aedes checks them
        this.state = LENGTH
        this.length = 0
        this.multiplier = 1
        this.lengthBytes = 0
      } else {
        const b = buf[at++]
        this.length += (b & 0x7f) * this.multiplier
        this.multiplier *= 128
        if (b & 0x80) {
          // [MQTT-2.2.3] at most four length bytes; aedes' parser would refuse a fifth too
          if (++this.lengthBytes === 4) return 'EF_ERR_BROKER_PACKET_TOO_LARGE'
          continue
        }
        if (this.length > this.limit) return 'EF_ERR_BROKER_PACKET_TOO_LARGE'
        this.bodyLeft = this.length
        this.state = HEADER
      }
    }
    return undefined
  }
}

/** A peer address on loopback; unlike a bind host it may be IPv4-mapped (`::ffff:127.0.0.1`) on a dual-stack listener. */
function isLoopbackPeer(address: string | undefined): boolean {
  if (!address) return false
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}

interface Gate {
  guard: PacketGuard
  address: string
  counted: boolean
  unauthenticated: boolean
  /** Publishes waiting for their quota [EF-1.7.5]: while > 0 the connection is not read. */
  holds: number
}

/**
 * Admission of new connections and the packet guard of each one. `handler`
 * wraps aedes' `handle`; the authenticate hook calls `authenticated` so the
 * connection leaves the unauthenticated pool and gets its packet limit.
 */
export class ConnectionLimits implements BrokerLimitStats {
  readonly refusals: BrokerRefusals = Object.create(null) as BrokerRefusals
  /** Device publishes delayed for their quota [EF-1.7.5]. */
  throttled = 0
  private readonly perAddress = new Map<string, number>()
  private readonly gates = new WeakMap<Socket, Gate>()
  private unauthenticated = 0
  private lastWarn = 0
  private warnedSince = 0

  constructor(
    readonly opts: Readonly<BrokerLimitOptions>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  count(code: string): void {
    this.refusals[code] = (this.refusals[code] ?? 0) + 1
  }

  /** Connections not yet authenticated, now (for tests and metrics). */
  get pending(): number {
    return this.unauthenticated
  }

  handler(handle: (socket: Socket) => unknown): (socket: Socket) => void {
    return (socket) => {
      const refused = this.admit(socket)
      if (refused) {
        this.count(refused)
        this.warn(refused, socket.remoteAddress)
        socket.destroy()
        return
      }
      handle(socket)
    }
  }

  /** Called by the authenticate hook once credentials are accepted. */
  authenticated(socket: Socket, maxPacketBytes: number): void {
    const gate = this.gates.get(socket)
    if (!gate) return
    gate.guard.authenticated(maxPacketBytes)
    if (gate.unauthenticated) {
      gate.unauthenticated = false
      this.unauthenticated--
    }
  }

  private admit(socket: Socket): string | undefined {
    const o = this.opts
    const address = socket.remoteAddress ?? ''
    const counted = o.maxConnectionsPerAddress > 0 && !(o.loopbackExempt && isLoopbackPeer(address))
    if (counted && (this.perAddress.get(address) ?? 0) >= o.maxConnectionsPerAddress)
      return 'EF_ERR_BROKER_TOO_MANY_CONNECTIONS'
    if (o.maxUnauthenticated > 0 && this.unauthenticated >= o.maxUnauthenticated)
      return 'EF_ERR_BROKER_TOO_MANY_CONNECTIONS'
    const gate: Gate = { guard: new PacketGuard(o.maxConnectBytes), address, counted, unauthenticated: true, holds: 0 }
    this.gates.set(socket, gate)
    this.unauthenticated++
    if (counted) this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1)
    socket.once('close', () => this.release(gate))
    this.guardReads(socket, gate)
    return undefined
  }

  private release(gate: Gate): void {
    if (gate.unauthenticated) {
      gate.unauthenticated = false
      this.unauthenticated--
    }
    if (gate.counted) {
      const left = (this.perAddress.get(gate.address) ?? 1) - 1
      if (left > 0) this.perAddress.set(gate.address, left)
      else this.perAddress.delete(gate.address)
    }
  }

  /**
   * aedes reads its connection with `read()` on 'readable' and hands each
   * buffer to its parser; checking the buffer here, before it is returned,
   * closes an oversized packet's connection while the parser holds at most
   * one limit's worth of it. No extra stream, no copy.
   */
  private guardReads(socket: Socket, gate: Gate): void {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the socket as `this`
    const read = socket.read
    const guard = gate.guard
    const refuse = (code: string) => this.refuse(socket, code)
    socket.read = function guardedRead(this: Socket, size?: number) {
      // Held: report nothing to read; the bytes stay in the socket, which stops reading from the kernel when full.
      if (gate.holds > 0) return null
      const buf = read.call(this, size) as Buffer | string | null
      if (buf === null || typeof buf === 'string') return buf
      const refused = guard.inspect(buf)
      if (!refused) return buf
      refuse(refused)
      return null
    } as Socket['read']
  }

  /**
   * Stops and restarts reading `socket` [EF-1.7.5]. aedes reads on 'readable';
   * a connection that was held gets one when released, to read what waited.
   */
  reading(socket: Socket): { hold(): void; release(): void } {
    const gate = this.gates.get(socket)
    return {
      hold: () => {
        if (gate) gate.holds++
      },
      release: () => {
        if (gate && --gate.holds === 0 && !socket.destroyed) setImmediate(() => socket.emit('readable'))
      },
    }
  }

  /** Closes a connection that broke a limit; counted and logged (at most once a second). */
  refuse(socket: Socket, code: string): void {
    if (socket.destroyed) return
    this.count(code)
    this.warn(code, socket.remoteAddress)
    socket.destroy()
  }

  private warn(code: string, address: string | undefined): void {
    // A flood of refusals must not become a flood of log lines.
    const t = this.now()
    this.warnedSince++
    if (t - this.lastWarn < 1000) return
    this.log.warn({ code, address, refusedSinceLastLine: this.warnedSince }, 'broker closed a connection over a limit')
    this.lastWarn = t
    this.warnedSince = 0
  }
}
