// Several hub replicas on one PostgreSQL [EF-12]: the election (elector.ts,
// lease-sql.ts) and the leader-only work it starts and stops (leader-work.ts).
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { LeaderElector, type Leadership } from './elector.js'
import { LeaderOnlyWork, type LeaderTask } from './leader-work.js'
import { checkClusterUrl } from './config.js'

export { LeaderElector, type Leadership } from './elector.js'
export { LeaderOnlyWork, type LeaderTask } from './leader-work.js'

export interface ClusterOptions {
  /** postgresql://… the replicas elect their leader on (the `--store` URL when it is PostgreSQL). */
  url?: string
  /** This replica's name; default `<hostname>-<pid>`. */
  replicaId?: string
  /** Lease timing, ms (defaults in elector.ts). */
  leaseMs?: number
  renewMs?: number
  fenceMarginMs?: number
}

export function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}`
}

/** A running election (or the sole replica's stand-in) and the work it drives. */
export interface Cluster {
  readonly leadership: Leadership
  readonly work: LeaderOnlyWork
  close(): Promise<void>
}

/**
 * With a PostgreSQL URL: starts bidding for leadership and runs `tasks` while this replica leads.
 * Without: the hub is the only replica, leads at once in term 0 and stops its work on close.
 */
export function startCluster(options: ClusterOptions, tasks: readonly LeaderTask[], log: Logger): Cluster {
  const replicaId = options.replicaId ?? defaultReplicaId()
  const work = new LeaderOnlyWork(tasks, log)
  const { leaseMs, renewMs, fenceMarginMs } = options
  const timing = {
    ...(leaseMs ? { leaseMs } : {}),
    ...(renewMs ? { renewMs } : {}),
    ...(fenceMarginMs ? { fenceMarginMs } : {}),
  }
  const url = options.url !== undefined ? checkClusterUrl(options.url) : undefined
  if (!url) {
    work.elected(0)
    return {
      leadership: { replicaId, isLeader: () => true, term: () => 0 },
      work,
      close: () => work.deposed(0, 'shutting down'),
    }
  }
  const elector = new LeaderElector({ url, replicaId, log, ...timing }, work)
  elector.start()
  return { leadership: elector, work, close: () => elector.close() }
}
