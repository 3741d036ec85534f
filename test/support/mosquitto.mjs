// A real Mosquitto 2 broker for external-broker tests, on a free loopback port,
// reading the password and ACL files the hub keeps in `dir`. With `tls` its one
// listener is MQTT over TLS with the given PEM files (e.g. a server certificate
// the hub CA issued) [EF-10].
import { spawn } from 'node:child_process'
import { createServer, connect } from 'node:net'
import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

async function waitPort(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise((r) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy()
        r(true)
      })
      c.on('error', () => r(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export async function startMosquitto(dir, port, { tls } = {}) {
  mkdirSync(dir, { recursive: true })
  port ??= await freePort()
  const conf = join(dir, 'mosquitto.conf')
  for (const f of ['passwd', 'acl']) if (!existsSync(join(dir, f))) writeFileSync(join(dir, f), '', { mode: 0o600 })
  // The limits the hub writes for Mosquitto [EF-1.7]; Mosquitto reads them at start, so write them first.
  mkdirSync(join(dir, 'conf.d'), { recursive: true })
  const { mosquittoLimitsConf } = await import('../../hub/dist/broker/mosquitto.js')
  writeFileSync(join(dir, 'conf.d', 'edgefleet-limits.conf'), mosquittoLimitsConf())
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      ...(tls
        ? [`cafile ${tls.caFile}`, `certfile ${tls.certFile}`, `keyfile ${tls.keyFile}`, 'tls_version tlsv1.2']
        : []),
      'allow_anonymous false',
      `password_file ${join(dir, 'passwd')}`,
      `acl_file ${join(dir, 'acl')}`,
      // The client id is the authenticated device id, as with the embedded broker.
      'use_username_as_clientid true',
      `include_dir ${join(dir, 'conf.d')}`,
      'persistence false',
      'max_inflight_messages 20',
      'max_queued_messages 4000',
      // Tests run as root; mosquitto would otherwise switch to its own user, which cannot read the hub's 0600 password file.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  )
  const pidFile = join(dir, 'mosquitto.pid')
  const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  proc.stderr.on('data', (c) => (err += c))
  writeFileSync(pidFile, String(proc.pid))
  await waitPort(port)
  const stop = () =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
      proc.once('exit', () => resolve())
      proc.kill('SIGTERM')
    })
  return {
    proc,
    port,
    url: `${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    dir,
    pidFile,
    stderr: () => err,
    stop,
    kill9: () =>
      new Promise((resolve) => {
        proc.once('exit', () => resolve())
        proc.kill('SIGKILL')
      }),
  }
}
