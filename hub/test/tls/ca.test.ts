// The hub CA [EF-10.1]: files and modes, host names in the server certificate,
// re-issue when a name is added, device certificates [EF-10.3], checked with
// node's own X.509 parser and a real TLS handshake.
import { X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { createServer, connect, type TLSSocket } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { ensureHubTls, issueDeviceCert, tlsPaths } from '../../src/tls/ca.js'
import { tempDir } from '../fixtures/hub.js'

const mode = (f: string) => statSync(f).mode & 0o777

/** Handshakes with a TLS server presenting `files`, trusting `ca`; resolves with the client's view. */
async function handshake(
  files: { certFile: string; keyFile: string },
  ca: string,
  servername: string,
  client: { cert?: string; key?: string } = {},
  serverCa?: string,
): Promise<{ authorized: boolean; error?: string; peerAuthorized?: boolean; peerCn?: string | string[] }> {
  const server = createServer({
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    ...(serverCa ? { ca: serverCa, requestCert: true, rejectUnauthorized: false } : {}),
  })
  // A subject may carry several CNs; node types the field as either.
  let peer: { authorized: boolean; cn?: string | string[] } | undefined
  server.on('secureConnection', (s: TLSSocket) => {
    peer = { authorized: s.authorized, cn: s.getPeerCertificate().subject?.CN }
    s.end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  try {
    return await new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port, ca, servername, rejectUnauthorized: false, ...client }, () => {
        const out = { authorized: s.authorized, error: s.authorizationError?.toString() }
        s.once('close', () => resolve({ ...out, peerAuthorized: peer?.authorized, peerCn: peer?.cn }))
        s.resume()
      })
      s.on('error', (err) => resolve({ authorized: false, error: err.message }))
    })
  } finally {
    server.close()
  }
}

describe('hub CA', () => {
  const cleanups: (() => void)[] = []
  afterEach(() => cleanups.splice(0).forEach((c) => c()))
  const dir = () => {
    const t = tempDir()
    cleanups.push(t.cleanup)
    return t.dir
  }

  it('creates the CA and a server certificate with private modes, trusted for the requested names', async () => {
    const data = dir()
    const files = await ensureHubTls(data, ['localhost', '127.0.0.1', 'hub.example'])
    const p = tlsPaths(data)
    expect(mode(p.dir)).toBe(0o700)
    expect(mode(p.caKeyFile)).toBe(0o600)
    expect(mode(p.keyFile)).toBe(0o600)
    const cert = new X509Certificate(readFileSync(files.certFile))
    const ca = new X509Certificate(readFileSync(files.caFile))
    expect(ca.ca).toBe(true)
    expect(cert.verify(ca.publicKey)).toBe(true)
    expect(cert.checkHost('hub.example')).toBe('hub.example')
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1')
    expect(cert.checkHost('other.example')).toBeUndefined()

    const caPem = readFileSync(files.caFile, 'utf8')
    expect(await handshake(files, caPem, 'hub.example')).toMatchObject({ authorized: true })
    // Another CA does not vouch for it; nor does the right CA for a name it was not issued for.
    const other = await ensureHubTls(dir(), ['localhost'])
    expect(await handshake(files, readFileSync(other.caFile, 'utf8'), 'localhost')).toMatchObject({
      authorized: false,
      error: expect.stringMatching(/UNABLE_TO_VERIFY|SELF_SIGNED/),
    })
    expect(await handshake(files, caPem, 'other.example')).toMatchObject({ authorized: false })
  })

  it('keeps the CA and certificate across starts, and re-issues the certificate when a name is added', async () => {
    const data = dir()
    const first = await ensureHubTls(data, ['localhost'])
    const ca1 = readFileSync(first.caFile, 'utf8')
    const cert1 = readFileSync(first.certFile, 'utf8')
    await ensureHubTls(data, ['localhost'])
    expect(readFileSync(first.certFile, 'utf8')).toBe(cert1)
    await ensureHubTls(data, ['localhost', 'edge.example'])
    expect(readFileSync(first.caFile, 'utf8')).toBe(ca1)
    const cert2 = new X509Certificate(readFileSync(first.certFile))
    expect(cert2.checkHost('edge.example')).toBe('edge.example')
    expect(cert2.verify(new X509Certificate(ca1).publicKey)).toBe(true)
  })

  it('issues device certificates (CN = device id) that a server trusting the CA accepts', async () => {
    const data = dir()
    const files = await ensureHubTls(data, ['localhost'])
    const caPem = readFileSync(files.caFile, 'utf8')
    const dev = await issueDeviceCert(data, 'dev-7')
    expect(new X509Certificate(dev.cert).subject).toBe('CN=dev-7')
    expect(dev.ca).toBe(caPem)
    const ok = await handshake(files, caPem, 'localhost', { cert: dev.cert, key: dev.key }, caPem)
    expect(ok).toMatchObject({ authorized: true, peerAuthorized: true, peerCn: 'dev-7' })

    const foreign = dir()
    await ensureHubTls(foreign, ['localhost'])
    const stranger = await issueDeviceCert(foreign, 'dev-7')
    const refused = await handshake(files, caPem, 'localhost', { cert: stranger.cert, key: stranger.key }, caPem)
    expect(refused).toMatchObject({ peerAuthorized: false, peerCn: 'dev-7' })
  })

  it('refuses to issue device certificates without a CA (EF_ERR_TLS_DISABLED)', async () => {
    await expect(issueDeviceCert(dir(), 'dev-1')).rejects.toMatchObject({ code: 'EF_ERR_TLS_DISABLED' })
  })
})
