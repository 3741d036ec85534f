// The local inference API on the device's loopback: bare node:http, because
// every microsecond here is added to each inference (issue figure: ≤ 0.2 ms).
//   GET  /v1/models                      loaded models and versions
//   POST /v1/models/{name}/infer         {inputs: {name: tensor}, binary?} → {outputs}
//   POST with content-type application/x-edgefleet-tensors: the binary format [EF-7.1]
//   ?preprocess=1 / ?postprocess=1: apply the manifest's meta (normalisation, labels) [EF-7.1.3]
//   GET  /v1/stats                       counters: telemetry, capture, drops, queue
//   GET  /metrics                        Prometheus text (requests, latency histogram, queue, drops)
//   GET  /healthz
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { EdgeFleetError, ERRORS, codeOf, decodeTensor, encodeTensor, type TensorValue } from '@edgefleet/shared'
import type { ModelHost } from '../runtime/host.js'
import type { Tensor } from '../runtime/session.js'
import { BINARY_CONTENT_TYPE, decodeBinary, encodeBinary } from './binary.js'
import { bodyLimit } from './limits.js'
import { postprocessOutputs, preprocessInputs } from './meaning.js'

export interface ApiOptions {
  host: ModelHost
  /** Ceiling of a binary body (bytes); the model's input size sets the actual limit [EF-7.1.1]. */
  maxBodyBytes: number
  /** Ceiling of a JSON body (bytes); defaults to maxBodyBytes. */
  maxJsonBodyBytes?: number
  deviceId: string
  /** Counters and queue state for GET /v1/stats (tests, benchmarks, operators on the device). */
  stats?: () => unknown
  /** Prometheus text for GET /metrics. */
  metrics?: () => string
  /** Address the API listens on: accepted in Host besides the loopback names when it is a specific, non-loopback one. */
  listenHost?: string
}

/**
 * [EF-7.1.2] Host names a request may carry: a page from another site that
 * re-points its own DNS name at 127.0.0.1 (DNS rebinding) sends that name in
 * Host, so anything but a loopback name (or the configured address) is refused.
 */
function hostAllowed(host: string | undefined, listenHost: string | undefined): boolean {
  if (host === undefined) return false
  const m = /^(localhost|127\.0\.0\.1|\[::1\]|[^:]+|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/.exec(host.toLowerCase())
  if (!m) return false
  const name = m[1]
  if (name === 'localhost' || name === '127.0.0.1' || name === '[::1]') return true
  return listenHost !== undefined && !['0.0.0.0', '::', ''].includes(listenHost) && name === listenHost.toLowerCase()
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) })
  res.end(data)
}

/** How long a refused request's unread body is drained before its connection closes (nginx's lingering close). */
export const LINGER_MS = 2000

/**
 * Answers and closes the connection without losing the answer: closing a socket
 * whose request body is still arriving makes the kernel send a reset, and the
 * reset discards the answer the client has not read yet. So the whole answer is
 * written, the rest of the body is read and dropped for at most LINGER_MS, and
 * only then does the response end (which closes the connection).
 */
function sendAndClose(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    connection: 'close',
  })
  if (req.complete) return void res.end(data)
  res.write(data)
  const finish = (): void => {
    clearTimeout(timer)
    if (!res.writableEnded) res.end()
  }
  const timer = setTimeout(finish, LINGER_MS)
  req.once('end', finish)
  req.once('close', finish)
  req.resume()
}

function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const code = codeOf(err)
  const body = { error: { code, message: code === 'EF_ERR_INTERNAL' ? 'internal error' : (err as Error).message } }
  if (code === 'EF_ERR_INFER_BODY_TOO_LARGE' || code === 'EF_ERR_HTTP_HOST_FORBIDDEN')
    sendAndClose(req, res, ERRORS[code].status, body)
  else send(res, ERRORS[code].status, body)
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > limit)
      return reject(new EdgeFleetError('EF_ERR_INFER_BODY_TOO_LARGE', `${declared} > ${limit} bytes`))
    const parts: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        // Stop buffering but keep reading, so the 413 reaches the client before the socket closes.
        req.removeAllListeners('data')
        req.resume()
        reject(new EdgeFleetError('EF_ERR_INFER_BODY_TOO_LARGE', `more than ${limit} bytes`))
        return
      }
      parts.push(chunk)
    })
    req.on('end', () => resolve(parts.length === 1 ? parts[0] : Buffer.concat(parts)))
    req.on('error', reject)
  })
}

const INFER_RE = /^\/v1\/models\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\/infer(?:\?(.*))?$/

/** `?preprocess=1&postprocess=1` [EF-7.1.3]; other parameters are refused so a typo is not silently ignored. */
function inferFlags(query: string | undefined): { preprocess: boolean; postprocess: boolean } {
  const flags = { preprocess: false, postprocess: false }
  for (const [key, value] of new URLSearchParams(query ?? '')) {
    if ((key !== 'preprocess' && key !== 'postprocess') || !['0', '1', 'true', 'false'].includes(value))
      throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', `query ${key}=${value}: only preprocess=1 and postprocess=1`)
    flags[key] = value === '1' || value === 'true'
  }
  return flags
}

/** JSON request body → input tensors [EF-2.5]; anything malformed is a 400 with a code. */
function jsonInputs(body: Buffer): { inputs: Record<string, Tensor>; binary: boolean } {
  let parsed: { inputs?: unknown; binary?: unknown }
  try {
    parsed = JSON.parse(body.toString('utf8')) as typeof parsed
  } catch (err) {
    throw new EdgeFleetError('EF_ERR_MSG_JSON', (err as Error).message)
  }
  if (
    !parsed ||
    typeof parsed !== 'object' ||
    !parsed.inputs ||
    typeof parsed.inputs !== 'object' ||
    Array.isArray(parsed.inputs)
  ) {
    throw new EdgeFleetError(
      'EF_ERR_INFER_BAD_TENSOR',
      'body must be {"inputs": {"<name>": {"type", "dims", "data"|"b64"}}}',
    )
  }
  const inputs: Record<string, Tensor> = {}
  for (const [name, tensor] of Object.entries(parsed.inputs as Record<string, TensorValue>)) {
    if (
      !tensor ||
      typeof tensor !== 'object' ||
      !Array.isArray(tensor.dims) ||
      tensor.dims.length > 16 ||
      !tensor.dims.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      throw new EdgeFleetError(
        'EF_ERR_INFER_BAD_TENSOR',
        `${name}: needs type, dims (non-negative integers) and data or b64`,
      )
    }
    if (
      (tensor.data !== undefined && !Array.isArray(tensor.data)) ||
      (tensor.b64 !== undefined && typeof tensor.b64 !== 'string')
    ) {
      throw new EdgeFleetError('EF_ERR_INFER_BAD_TENSOR', `${name}: data must be an array, b64 a base64 string`)
    }
    inputs[name] = decodeTensor(name, tensor)
  }
  return { inputs, binary: parsed.binary === true }
}

type BodyCeilings = Parameters<typeof bodyLimit>[2]
type InferResult = Awaited<ReturnType<ModelHost['infer']>>

export function createApiServer(opts: ApiOptions): Server {
  const ceilings = { maxBodyBytes: opts.maxBodyBytes, maxJsonBodyBytes: opts.maxJsonBodyBytes ?? opts.maxBodyBytes }
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/'
    if (!hostAllowed(req.headers.host, opts.listenHost))
      throw new EdgeFleetError('EF_ERR_HTTP_HOST_FORBIDDEN', `Host ${JSON.stringify(req.headers.host ?? '')}`)
    const inferMatch = req.method === 'POST' ? INFER_RE.exec(url) : null
    if (inferMatch) await serveInfer(opts, ceilings, req, res, inferMatch)
    else if (req.method !== 'GET' || !serveRead(opts, url, res))
      send(res, 404, { error: { code: 'EF_ERR_HTTP_NOT_FOUND', message: `${req.method} ${url}` } })
  }
  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(req, res, err)
    })
  })
}

/** POST /v1/models/{name}/infer: reads the body within the model's limit [EF-7.1.1], runs it, replies in the request's format. */
async function serveInfer(
  opts: ApiOptions,
  ceilings: BodyCeilings,
  req: IncomingMessage,
  res: ServerResponse,
  match: RegExpExecArray,
): Promise<void> {
  const flags = inferFlags(match[2])
  const isBinary = (req.headers['content-type'] ?? '').startsWith(BINARY_CONTENT_TYPE)
  const manifest = opts.host.get(match[1])?.manifest
  const limit = bodyLimit(manifest, isBinary, ceilings)
  const body = await readBody(req, limit)
  const decoded = isBinary ? { inputs: decodeBinary(body), binary: false } : jsonInputs(body)
  const inputs = flags.preprocess ? preprocessInputs(manifest?.meta, decoded.inputs) : decoded.inputs
  const result = await opts.host.infer(match[1], inputs)
  // The results follow the version that ran, which a hot swap may have changed since the body was read.
  const results = flags.postprocess ? { results: postprocessOutputs(result.meta, result.outputs) } : {}
  if (isBinary) {
    const out = encodeBinary(
      { model: result.model, version: result.version, latencyMs: result.latencyMs, ...results },
      result.outputs,
    )
    res.writeHead(200, { 'content-type': BINARY_CONTENT_TYPE, 'content-length': out.length })
    res.end(out)
    return
  }
  sendJsonResult(res, result, results, decoded.binary)
}

/** A JSON inference reply; `b64`: tensors as base64 rather than number arrays, as the request asked. */
function sendJsonResult(res: ServerResponse, result: InferResult, results: object, b64: boolean): void {
  const outputs: Record<string, TensorValue> = {}
  for (const [k, t] of Object.entries(result.outputs)) outputs[k] = encodeTensor(t.type, t.dims, t.data, b64)
  send(res, 200, { model: result.model, version: result.version, latencyMs: result.latencyMs, outputs, ...results })
}

/** The GET routes besides inference; false when `url` is none of them (or its source is not configured). */
function serveRead(opts: ApiOptions, url: string, res: ServerResponse): boolean {
  if (url === '/v1/models') {
    send(res, 200, {
      items: opts.host.list().map((x) => ({
        name: x.name,
        version: x.version,
        precision: x.manifest.precision,
        slot: x.slot,
        inputs: x.manifest.inputs,
        outputs: x.manifest.outputs,
      })),
    })
  } else if (url === '/v1/stats' && opts.stats) {
    send(res, 200, opts.stats())
  } else if (url === '/metrics' && opts.metrics) {
    const text = opts.metrics()
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  } else if (url === '/healthz') {
    send(res, 200, { ok: true, deviceId: opts.deviceId, models: opts.host.list().length })
  } else return false
  return true
}
