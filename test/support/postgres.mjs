// A throwaway PostgreSQL cluster (Debian's postgresql-15 package) for tests of
// the hub's PostgreSQL store and of leader election: initdb in a fresh temp
// folder, the server on a free loopback port with its unix socket in that
// folder (never /var/run/postgresql, so several clusters and a system one
// coexist), trust authentication for one superuser, and one database. initdb
// and the server refuse to run as root, so as root every binary runs as the
// `postgres` system user (runuser); as any other user, as that user. `stop()`
// stops the server and removes the folder; `stopServer()`/`startServer()` stop
// and restart it on the same port and data (the "PostgreSQL restarted while
// the hub runs" failure case).
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './mosquitto.mjs'

const run = promisify(execFile)
/** Debian's layout: /usr/lib/postgresql/<major>/bin; 15 is bookworm's, else the newest installed. */
function findBin() {
  if (process.env.EDGEFLEET_PG_BIN) return process.env.EDGEFLEET_PG_BIN
  const root = '/usr/lib/postgresql'
  if (existsSync(join(root, '15', 'bin', 'initdb'))) return join(root, '15', 'bin')
  const majors = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)) : []
  const newest = majors.sort((a, b) => Number(b) - Number(a))[0]
  if (!newest) throw new Error('PostgreSQL is not installed: run `bash scripts/bootstrap.sh --test-deps`')
  return join(root, newest, 'bin')
}
const PG_BIN = findBin()
const SUPERUSER = 'edgefleet'
const DATABASE = 'edgefleet'
const isRoot = process.getuid?.() === 0

/** argv for a PostgreSQL binary, as the postgres system user when we are root. */
function command(binary, args) {
  const path = join(PG_BIN, binary)
  return isRoot ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args]
}

async function pg(binary, args, timeoutMs = 60_000) {
  const [file, argv] = command(binary, args)
  try {
    return await run(file, argv, { timeout: timeoutMs })
  } catch (err) {
    throw new Error(`${binary} ${args.join(' ')} failed: ${err.stderr || err.stdout || err.message}`)
  }
}

/** A temp folder the server's user owns (0700: PostgreSQL refuses a group/world-readable data folder). */
function makeDir() {
  const dir = mkdtempSync(join(tmpdir(), 'edgefleet-pg-'))
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    chownSync(dir, uid, gid)
  }
  chmodSync(dir, 0o700)
  return dir
}

/**
 * Server settings for a test cluster. fsync off: a clean stop still writes every committed row to
 * disk (so a stop/start loses nothing), only an OS crash could, and tests never survive that anyway.
 */
function serverOptions(dir, port) {
  return [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=100',
    '-c shared_buffers=32MB',
  ].join(' ')
}

/**
 * Starts a fresh cluster. Options: `port` (default a free one), `database` (default 'edgefleet').
 * Resolves `{ url, port, dir, host, user, database, stop, stopServer, startServer, psql }`.
 */
export async function startPostgres(options = {}) {
  const port = options.port ?? (await freePort())
  const database = options.database ?? DATABASE
  const dir = makeDir()
  const data = join(dir, 'data')
  const log = join(dir, 'server.log')
  await pg('initdb', ['-D', data, '-U', SUPERUSER, '--auth=trust', '--encoding=UTF8', '--no-sync'])
  let running = false
  const startServer = async () => {
    await pg('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', serverOptions(dir, port), 'start'])
    running = true
  }
  const stopServer = async (mode = 'fast') => {
    if (!running) return
    await pg('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'])
    running = false
  }
  // A test process that dies without stop() must not leave a server behind.
  const onExit = () => {
    if (!running) return
    const [file, argv] = command('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'])
    try {
      execFileSync(file, argv, { stdio: 'ignore' })
    } catch {
      // already gone
    }
  }
  process.once('exit', onExit)
  await startServer()
  if (database !== 'postgres') await pg('createdb', ['-h', dir, '-p', String(port), '-U', SUPERUSER, database])
  const psql = async (sql) =>
    (await pg('psql', ['-h', dir, '-p', String(port), '-U', SUPERUSER, '-d', database, '-At', '-c', sql])).stdout
  return {
    url: `postgresql://${SUPERUSER}@127.0.0.1:${port}/${database}`,
    port,
    dir,
    host: '127.0.0.1',
    user: SUPERUSER,
    database,
    psql,
    startServer,
    stopServer,
    stop: async () => {
      try {
        await stopServer('fast')
      } finally {
        process.removeListener('exit', onExit)
        if (existsSync(dir)) rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
