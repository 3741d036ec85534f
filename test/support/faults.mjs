// Fault injection helpers for reliability and chaos tests: a real small tmpfs
// (a disk that fills up; needs root, as CI runs), filling and freeing it.
import { execFileSync } from 'node:child_process'
import { mkdirSync, openSync, writeSync, closeSync, rmSync, statfsSync } from 'node:fs'
import { join } from 'node:path'

/** True when this process may mount a tmpfs (root with CAP_SYS_ADMIN). */
export function canMount() {
  if (process.getuid?.() !== 0) return false
  const probe = join('/tmp', `ef-mount-probe-${process.pid}`)
  try {
    mkdirSync(probe, { recursive: true })
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' })
    execFileSync('umount', [probe], { stdio: 'ignore' })
    return true
  } catch {
    return false
  } finally {
    rmSync(probe, { recursive: true, force: true })
  }
}

/** Mounts a tmpfs of `bytes` at `dir`; returns its unmount (lazy, so open files do not block it). */
export function mountTmpfs(dir, bytes) {
  mkdirSync(dir, { recursive: true })
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir])
  return () => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' })
    } catch {
      /* already gone */
    }
  }
}

/** Free bytes on the file system holding `dir`. */
export function freeBytes(dir) {
  const s = statfsSync(dir)
  return s.bavail * s.bsize
}

/**
 * Writes `file` until the file system holding it has at most `leaveBytes`
 * free (0: until ENOSPC). Returns the bytes written.
 */
export function fillDisk(file, leaveBytes = 0) {
  const fd = openSync(file, 'a')
  const block = Buffer.alloc(64 * 1024, 0xa5)
  let written = 0
  try {
    for (;;) {
      const room = freeBytes(file) - leaveBytes
      if (room <= 0) break
      const n = Math.min(block.length, room)
      try {
        written += writeSync(fd, block, 0, n)
      } catch (err) {
        if (err.code === 'ENOSPC') break
        throw err
      }
    }
  } finally {
    closeSync(fd)
  }
  return written
}
