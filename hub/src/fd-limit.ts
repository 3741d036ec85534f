// The hub's file-descriptor limit: every device connection is a socket, so a
// hub holding 10,000 devices needs far more than the usual 1,024. Node itself
// already raises its soft RLIMIT_NOFILE to the hard limit when it starts
// (PlatformInit in node.cc), so what is left is the hard limit. Node has no
// setrlimit; util-linux's `prlimit --pid` calls prlimit(2) on a running
// process, so at start the hub asks it for `targetFds` (capped by the
// kernel's fs.nr_open) for itself. That succeeds with CAP_SYS_RESOURCE (root,
// or a systemd unit's LimitNOFILE does it for you); otherwise the hub keeps
// soft = hard and logs the limit with the way to lift it.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'

export interface FdLimit {
  soft: number
  hard: number
}

/** What the hub asks for: enough for a large fleet on one hub, if the kernel allows it. */
export const defaultFdTarget = 1_048_576

/** A process's RLIMIT_NOFILE from /proc (Linux); undefined elsewhere or when unlimited. */
export function readFdLimit(pid: number | 'self' = 'self'): FdLimit | undefined {
  try {
    const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))
    return m ? { soft: Number(m[1]), hard: Number(m[2]) } : undefined
  } catch {
    return undefined
  }
}

function kernelMax(): number {
  try {
    return Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()) || defaultFdTarget
  } catch {
    return defaultFdTarget
  }
}

/** prlimit(2) on this process through util-linux; the error text when it failed. */
function prlimitSelf(soft: number, hard: number): string | undefined {
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`], {
    encoding: 'utf8',
    timeout: 5000,
  })
  return r.error ? r.error.message : r.status === 0 ? undefined : r.stderr.trim()
}

/**
 * Raises RLIMIT_NOFILE towards `target` (hard and soft), else soft to the hard
 * limit, and logs the limit in force. Returns it (undefined off Linux).
 */
export function raiseFdLimit(log: Pick<Logger, 'info' | 'warn'>, target = defaultFdTarget): FdLimit | undefined {
  const before = readFdLimit()
  if (!before) return undefined
  const want = Math.min(target, kernelMax())
  if (before.soft >= want) {
    log.info({ fdLimit: before.soft }, 'file-descriptor limit')
    return before
  }
  // Above the hard limit needs CAP_SYS_RESOURCE; without it, at least the soft limit goes up to the hard one.
  const err = prlimitSelf(want, Math.max(want, before.hard))
  if (err && before.soft < before.hard) prlimitSelf(before.hard, before.hard)
  const after = readFdLimit() ?? before
  if (after.soft > before.soft) log.info({ from: before.soft, to: after.soft }, 'file-descriptor limit raised')
  if (after.soft < want)
    log.warn(
      { fdLimit: after.soft, hard: after.hard, ...(err ? { err } : {}) },
      `file-descriptor limit ${after.soft} caps the devices this hub can hold: raise the hard limit ` +
        `(run as root, systemd LimitNOFILE=${want}, or \`ulimit -Hn ${want}\` in the shell that starts it)`,
    )
  return after
}
