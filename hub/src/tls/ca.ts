// The hub's private certificate authority [EF-10.1]: created at the first start
// with TLS in <data>/tls/ (folder 0700, keys 0600), it issues the server
// certificate the broker and the API present, and client certificates for
// devices (mutual TLS, CN = device id). Certificates are made in JS
// (@peculiar/x509 over WebCrypto, ECDSA P-256): no openssl binary at run time.
import 'reflect-metadata' // @peculiar/x509's dependency injection (tsyringe) needs it, once, before it loads
import * as x509 from '@peculiar/x509'
import { X509Certificate, webcrypto } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { EdgeFleetError } from '@edgefleet/shared'

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]) // node's webcrypto is the standard Crypto; tsconfig has no DOM lib to say so

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const DAY_MS = 24 * 60 * 60 * 1000

const defaultTlsLifetimes = {
  /** 10 years: the CA is the fleet's trust anchor, pinned on every device. */
  caDays: 3650,
  /** 2 years: re-issued at start when it expires within 30 days or misses a host name. */
  serverDays: 730,
  /** 2 years per device certificate. */
  clientDays: 730,
}

/** Where the hub keeps its TLS material; all PEM. */
export function tlsPaths(dataDir: string) {
  const dir = join(dataDir, 'tls')
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    caKeyFile: join(dir, 'ca-key.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server-key.pem'),
  }
}

/** Host names a generated server certificate covers by default. */
export function defaultTlsHosts(): string[] {
  return ['localhost', '127.0.0.1', hostname()]
}

function writeSecret(path: string, text: string): void {
  const tmp = `${path}.tmp`
  writeFileSync(tmp, text, { mode: 0o600 })
  chmodSync(tmp, 0o600) // the umask may have narrowed it further, never widened: keep exactly 0600
  renameSync(tmp, path)
}

function writePublic(path: string, text: string): void {
  const tmp = `${path}.tmp`
  writeFileSync(tmp, text, { mode: 0o644 })
  renameSync(tmp, path)
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY')
}

async function importKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(pem), ALG, true, ['sign'])
}

const serial = () =>
  Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1')
const isIp = (h: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || h.includes(':')

async function createCa(paths: ReturnType<typeof tlsPaths>, now: number): Promise<void> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=EdgeFleet hub CA ${hostname()}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + defaultTlsLifetimes.caDays * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  writeSecret(paths.caKeyFile, await exportKeyPem(keys.privateKey))
  writePublic(paths.caFile, cert.toString('pem'))
}

interface Issuer {
  cert: x509.X509Certificate
  key: webcrypto.CryptoKey
}

async function loadIssuer(p: ReturnType<typeof tlsPaths>): Promise<Issuer> {
  return {
    cert: new x509.X509Certificate(readFileSync(p.caFile, 'utf8')),
    key: await importKeyPem(readFileSync(p.caKeyFile, 'utf8')),
  }
}

/** A leaf certificate signed by the CA: a server one (SAN host names) or a client one (CN = device id). */
async function issueLeaf(
  issuer: Issuer,
  opts: { cn: string; hosts?: string[]; usage: 'server' | 'client'; days: number; now: number },
): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])
  const sans = (opts.hosts ?? []).map((h) => ({ type: isIp(h) ? ('ip' as const) : ('dns' as const), value: h }))
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${opts.cn}`,
    issuer: issuer.cert.subject,
    notBefore: new Date(opts.now - 60_000),
    notAfter: new Date(opts.now + opts.days * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: issuer.key,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([
        opts.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
      ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.cert),
    ],
  })
  return { cert: cert.toString('pem'), key: await exportKeyPem(keys.privateKey) }
}

/** Whether the server certificate at `file` covers every host and stays valid for 30 more days. */
function serverCertFits(file: string, caPem: string, hosts: string[], now: number): boolean {
  if (!existsSync(file)) return false
  const cert = new X509Certificate(readFileSync(file))
  if (!cert.verify(new X509Certificate(caPem).publicKey)) return false // issued by a CA replaced since
  if (Date.parse(cert.validTo) < now + 30 * DAY_MS) return false
  return hosts.every((h) => (isIp(h) ? cert.checkIP(h) : cert.checkHost(h)) !== undefined)
}

/** The hub CA in <dataDir>/tls (folder 0700, key 0600), created when missing. */
export async function ensureHubCa(dataDir: string, now = Date.now()): Promise<ReturnType<typeof tlsPaths>> {
  const p = tlsPaths(dataDir)
  mkdirSync(p.dir, { recursive: true, mode: 0o700 })
  chmodSync(p.dir, 0o700)
  if (!existsSync(p.caFile) || !existsSync(p.caKeyFile)) await createCa(p, now)
  return p
}

export interface HubTlsFiles {
  caFile: string
  certFile: string
  keyFile: string
}

/**
 * The hub's CA and a server certificate for `hosts` in <dataDir>/tls, created
 * when missing; the server certificate is re-issued when it misses a host or
 * nears its end. Returns the file paths.
 */
export async function ensureHubTls(dataDir: string, hosts: string[], now = Date.now()): Promise<HubTlsFiles> {
  const paths = await ensureHubCa(dataDir, now)
  const caPem = readFileSync(paths.caFile, 'utf8')
  if (!serverCertFits(paths.certFile, caPem, hosts, now)) {
    const leaf = await issueLeaf(await loadIssuer(paths), {
      cn: hosts[0] ?? 'localhost',
      hosts,
      usage: 'server',
      days: defaultTlsLifetimes.serverDays,
      now,
    })
    writeSecret(paths.keyFile, leaf.key)
    writePublic(paths.certFile, leaf.cert)
  }
  return { caFile: paths.caFile, certFile: paths.certFile, keyFile: paths.keyFile }
}

/**
 * A client certificate for a device (CN = device id), signed by the hub CA
 * [EF-10.3]. The key is returned once and not kept by the hub.
 */
export async function issueDeviceCert(
  dataDir: string,
  deviceId: string,
  now = Date.now(),
): Promise<{ cert: string; key: string; ca: string }> {
  const paths = tlsPaths(dataDir)
  if (!existsSync(paths.caKeyFile))
    throw new EdgeFleetError(
      'EF_ERR_TLS_DISABLED',
      'the hub has no CA: start it with --tls to issue device certificates',
    )
  const leaf = await issueLeaf(await loadIssuer(paths), {
    cn: deviceId,
    usage: 'client',
    days: defaultTlsLifetimes.clientDays,
    now,
  })
  return { ...leaf, ca: readFileSync(paths.caFile, 'utf8') }
}
