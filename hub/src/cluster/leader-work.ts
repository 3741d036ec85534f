// The fleet-wide work only the leader runs [EF-12.6]: rollout ticks, held
// deploys, resends of idle commands, drift and retention. Each part is a
// start/stop pair; LeaderOnlyWork starts them all when this replica is elected
// and stops them all (waiting for a tick in progress) when it is not any more.
import type { Logger } from 'pino'
import type { LeaderHooks } from './elector.js'

export interface LeaderTask {
  /** For logs. */
  name: string
  start(): void
  /** Resolves once nothing of the task runs any more (an in-flight tick finished). */
  stop(): Promise<void> | void
}

export class LeaderOnlyWork implements LeaderHooks {
  private running = false
  /** Term changes this replica went through, for logs and tests. */
  readonly history: { term: number; started: number; stopped?: number; reason?: string }[] = []

  constructor(
    private readonly tasks: readonly LeaderTask[],
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  get active(): boolean {
    return this.running
  }

  elected(term: number): void {
    if (this.running) return
    this.running = true
    this.history.push({ term, started: this.clock() })
    for (const task of this.tasks) task.start()
    this.log.info({ term, tasks: this.tasks.map((t) => t.name) }, 'leader-only work started')
  }

  async deposed(term: number, reason: string): Promise<void> {
    if (!this.running) return
    this.running = false
    // Each task is stopped even when another's stop fails: none may keep running past the lease.
    const results = await Promise.allSettled(this.tasks.map(async (task) => task.stop()))
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        this.log.error({ task: this.tasks[i]?.name, err: (r.reason as Error).message }, 'stopping leader work failed')
    })
    const last = this.history.at(-1)
    if (last && last.stopped === undefined) Object.assign(last, { stopped: this.clock(), reason })
    this.log.info({ term, reason }, 'leader-only work stopped')
  }
}
