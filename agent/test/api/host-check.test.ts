// The local API's Host check [EF-7.1.2] on a real HTTP server: loopback names
// (with or without a port) are served; any other Host, or none, is 421
// EF_ERR_HTTP_HOST_FORBIDDEN before the request does anything (DNS rebinding).
import { connect } from 'node:net'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModelHost } from '../../src/runtime/host.js'
import { createApiServer } from '../../src/api/server.js'

/** One raw HTTP/1.1 request (so the Host header is exactly what the test says); resolves with status and body. */
function raw(port: number, head: string, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(`${head}\r\nconnection: close\r\n\r\n${body}`))
    let text = ''
    s.on('data', (d) => (text += d.toString()))
    s.on('end', () =>
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), body: text.split('\r\n\r\n')[1] ?? '' }),
    )
    s.on('error', reject)
  })
}

describe('local API Host check', () => {
  let host: ModelHost
  const servers: Server[] = []
  const ports: Record<string, number> = {}
  const inferred: string[] = []

  beforeAll(async () => {
    host = new ModelHost({ threads: 1, executionProviders: ['cpu'] })
    host.onInfer((m) => inferred.push(m))
    for (const [name, listenHost] of [
      ['loopback', '127.0.0.1'],
      ['lan', '192.168.7.21'],
    ] as const) {
      const server = createApiServer({ host, maxBodyBytes: 1024, deviceId: 'dev-1', listenHost })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
      servers.push(server)
      ports[name] = (server.address() as AddressInfo).port
    }
  })
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
    await host?.close()
  })

  it.each(['localhost', 'localhost:8790', '127.0.0.1', '127.0.0.1:8790', '[::1]', '[::1]:8790', 'LOCALHOST:1'])(
    'serves Host %s',
    async (h) => {
      const r = await raw(ports.loopback, `GET /healthz HTTP/1.1\r\nhost: ${h}`)
      expect(r.status).toBe(200)
      expect(JSON.parse(r.body)).toMatchObject({ ok: true, deviceId: 'dev-1' })
    },
  )

  it.each([
    'evil.example',
    'evil.example:8790',
    'localhost.evil.example',
    '127.0.0.1.nip.io:8790',
    '192.168.7.21',
    '[::2]:8790',
    'localhost:8790:1',
  ])('refuses Host %s with 421 EF_ERR_HTTP_HOST_FORBIDDEN, inference included', async (h) => {
    for (const [head, body] of [
      [`GET /v1/models HTTP/1.1\r\nhost: ${h}`, ''],
      [
        `POST /v1/models/wake/infer HTTP/1.1\r\nhost: ${h}\r\ncontent-type: application/json\r\ncontent-length: 13`,
        '{"inputs":{}}',
      ],
    ]) {
      const r = await raw(ports.loopback, head, body)
      expect(r.status).toBe(421)
      expect(JSON.parse(r.body).error.code).toBe('EF_ERR_HTTP_HOST_FORBIDDEN')
    }
    expect(inferred).toEqual([])
  })

  it('refuses a request without Host (HTTP/1.0)', async () => {
    const r = await raw(ports.loopback, 'GET /healthz HTTP/1.0')
    expect(r.status).toBe(421)
    expect(JSON.parse(r.body).error.code).toBe('EF_ERR_HTTP_HOST_FORBIDDEN')
  })

  it('also serves the configured specific address when the API listens on one', async () => {
    expect((await raw(ports.lan, 'GET /healthz HTTP/1.1\r\nhost: 192.168.7.21:8790')).status).toBe(200)
    expect((await raw(ports.lan, 'GET /healthz HTTP/1.1\r\nhost: localhost')).status).toBe(200)
    expect((await raw(ports.lan, 'GET /healthz HTTP/1.1\r\nhost: 192.168.7.22')).status).toBe(421)
  })
})
