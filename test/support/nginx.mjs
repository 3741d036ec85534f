// A throwaway nginx (Debian's package) serving a folder of blobs as an
// artifact origin would [EF-4.13]: static files by name, range requests, an
// access log with the bytes each request sent. One process, no daemon, no
// master (`daemon off; master_process off;`), its config, logs, pid and temp
// folders in `dir`, so it runs as root or as any user and stops with its
// process. `limitRate` (nginx's limit_rate, e.g. '1k') makes a slow origin.
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { freePort } from './mosquitto.mjs'

function config(dir, root, port, limitRate) {
  const temp = (name) => `${name}_temp_path ${join(dir, 'tmp', name)};`
  return [
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    // One line per request: what a test needs to count the bytes the origin served.
    '  log_format origin \'$status $request_method $uri $body_bytes_sent "$http_range"\';',
    `  access_log ${join(dir, 'access.log')} origin;`,
    `  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join(' ')}`,
    '  default_type application/octet-stream;',
    '  sendfile on;',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    root ${root};`,
    '    location / {',
    '      autoindex off;',
    ...(limitRate ? [`      limit_rate ${limitRate};`] : []),
    '    }',
    '  }',
    '}',
    '',
  ].join('\n')
}

function waitPort(port, proc, stderr, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (proc.exitCode !== null) return reject(new Error(`nginx exited ${proc.exitCode}: ${stderr()}`))
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve()
      })
      socket.once('error', () => {
        socket.destroy()
        if (Date.now() > deadline) reject(new Error(`nginx not listening on ${port}: ${stderr()}`))
        else setTimeout(attempt, 50)
      })
    }
    attempt()
  })
}

/** Starts nginx serving `root` on `port` (default: a free one); `dir` holds its own files. */
export async function startNginx(dir, root, options = {}) {
  const port = options.port ?? (await freePort())
  mkdirSync(join(dir, 'tmp'), { recursive: true })
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, config(dir, root, port, options.limitRate))
  let stderr = ''
  const proc = spawn('nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  proc.stderr.on('data', (d) => (stderr += d))
  const errors = () => stderr + (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '')
  await waitPort(port, proc, errors)
  const accessLog = () =>
    (existsSync(join(dir, 'access.log')) ? readFileSync(join(dir, 'access.log'), 'utf8') : '')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [status, method, uri, bytes] = line.split(' ')
        return { status: Number(status), method, uri, bytes: Number(bytes), range: /"(.*)"$/.exec(line)?.[1] ?? '' }
      })
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    proc,
    accessLog,
    /** Bytes of response bodies sent for `uri` (all of them without one). */
    bytesServed: (uri) => accessLog().reduce((sum, e) => sum + (uri === undefined || e.uri === uri ? e.bytes : 0), 0),
    errors,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
        proc.once('exit', () => resolve())
        proc.kill('SIGTERM') // nginx: fast shutdown
      }),
  }
}
