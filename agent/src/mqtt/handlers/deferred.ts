// Commands whose last run was deferred for a transient fault [EF-2.4.1]: each
// runs again after the next (re)connect or a back-off (1 s doubling to 30 s),
// whichever comes first, until its outcome is final. This is what makes a full
// disk or a dropped link delay a deploy instead of failing it.

export interface DeferredOptions {
  /** Registers a (re)connect listener; returns its remover. */
  onReconnect: (fn: () => void) => () => void
  /** First back-off delay in ms; doubles per attempt up to maxDelayMs. */
  minDelayMs?: number
  maxDelayMs?: number
}

interface Waiting {
  timer: NodeJS.Timeout
  off: () => void
}

export class DeferredCmds {
  private readonly waiting = new Map<string, Waiting>()
  private readonly attempts = new Map<string, number>()
  private closed = false

  constructor(private readonly o: DeferredOptions) {}

  /** Runs `again` later for command `id` (replacing a run already scheduled for it). */
  schedule(id: string, again: () => void): void {
    if (this.closed) return
    this.cancel(id)
    const attempt = (this.attempts.get(id) ?? 0) + 1
    this.attempts.set(id, attempt)
    const delay = Math.min(this.o.maxDelayMs ?? 30_000, (this.o.minDelayMs ?? 1000) * 2 ** (attempt - 1))
    const fire = () => {
      if (!this.waiting.has(id)) return
      this.cancel(id)
      again()
    }
    const timer = setTimeout(fire, delay)
    timer.unref()
    this.waiting.set(id, { timer, off: this.o.onReconnect(fire) })
  }

  /** The command's outcome is final: forget its attempts. */
  settled(id: string): void {
    this.cancel(id)
    this.attempts.delete(id)
  }

  /** Commands waiting for another run. */
  get size(): number {
    return this.waiting.size
  }

  close(): void {
    this.closed = true
    for (const id of [...this.waiting.keys()]) this.cancel(id)
  }

  private cancel(id: string): void {
    const w = this.waiting.get(id)
    if (!w) return
    clearTimeout(w.timer)
    w.off()
    this.waiting.delete(id)
  }
}
