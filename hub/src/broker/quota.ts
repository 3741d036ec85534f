// Per-device publish quotas [EF-1.7.5]: a message-rate and a byte-rate token
// bucket per device id (kept across reconnects, so reconnecting does not refill
// them). A publish over quota is delayed while the device's connection stops
// being read (TCP pushes back on the device, nothing is lost); one that would
// have to wait longer than `maxDelayMs` is refused and the device disconnected
// (its QoS 1 messages are sent again after it reconnects).

export interface DeviceQuotaOptions {
  /** Sustained messages per second one device may publish. */
  messagesPerSec: number
  /** Messages a device may publish at once above the sustained rate. */
  messageBurst: number
  /** Sustained payload bytes per second one device may publish. */
  bytesPerSec: number
  /** Bytes a device may publish at once above the sustained rate (at least the largest packet). */
  byteBurst: number
  /** A publish that would wait longer than this for its quota is refused, ms. */
  maxDelayMs: number
}

// A deploying agent sends a fetch ack every 4 chunks (≈100/s on a fast link
// for 256 KiB chunks), progress events, a telemetry batch every 5 s and, after
// an outage, its whole outbox 16 messages at a time; none of that should wait.
export const defaultDeviceQuota: Readonly<DeviceQuotaOptions> = Object.freeze({
  messagesPerSec: 200,
  messageBurst: 1000,
  bytesPerSec: 2 * 1024 * 1024,
  byteBurst: 16 * 1024 * 1024,
  maxDelayMs: 10_000,
})

class Bucket {
  private tokens: number
  private last: number

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst
    this.last = now
  }

  /** Takes `n` (the balance may go negative: debt); returns the wait until the balance is back at 0, ms. */
  take(n: number, now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000)
    this.last = now
    this.tokens -= n
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate
  }

  refund(n: number): void {
    this.tokens += n
  }
}

interface DeviceBuckets {
  messages: Bucket
  bytes: Bucket
}

type QuotaVerdict = { delayMs: number } | { refused: true }

export class DeviceQuotas {
  private readonly devices = new Map<string, DeviceBuckets>()

  constructor(
    readonly opts: Readonly<DeviceQuotaOptions>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Charges one publish of `bytes` to `deviceId`. */
  charge(deviceId: string, bytes: number): QuotaVerdict {
    const opts = this.opts
    const now = this.now()
    let bucket = this.devices.get(deviceId)
    if (!bucket) {
      bucket = {
        messages: new Bucket(opts.messagesPerSec, opts.messageBurst, now),
        bytes: new Bucket(opts.bytesPerSec, opts.byteBurst, now),
      }
      this.devices.set(deviceId, bucket)
    }
    const delayMs = Math.max(bucket.messages.take(1, now), bucket.bytes.take(bytes, now))
    if (delayMs <= opts.maxDelayMs) return { delayMs }
    bucket.messages.refund(1)
    bucket.bytes.refund(bytes)
    return { refused: true }
  }
}

/** Stops and restarts reading one connection (ConnectionLimits.hold/release). */
interface ReadHold {
  hold(): void
  release(): void
}

/**
 * Runs `go` after `delayMs` with the connection unread meanwhile, so the
 * device's own TCP window absorbs what it sends next. Packets already parsed
 * from the same read keep their own delays; reading resumes when the last of
 * them is due.
 */
export function delayed(reading: ReadHold, delayMs: number, go: () => void): void {
  reading.hold()
  setTimeout(() => {
    reading.release()
    go()
  }, delayMs)
}
