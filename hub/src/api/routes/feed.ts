// The retraining feed over HTTP [EF-9.6]: NDJSON by cursor (optionally
// following new records), the bytes of captured samples [EF-9.8] and labels
// posted by devices or applications [EF-9.10].
import { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { EdgeFleetError, npyOfTensor, type Sample, type TensorValue } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import type { FeedLine, HubStore } from '../../store/index.js'
import type { FeedLive } from '../../telemetry/index.js'

const FeedQuery = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    since: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
    follow: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
)

const SampleParams = Type.Object({ deviceId: Type.String({ maxLength: 64 }), sampleId: Type.String({ maxLength: 64 }) })
const TensorParams = Type.Object({
  deviceId: Type.String({ maxLength: 64 }),
  sampleId: Type.String({ maxLength: 64 }),
  group: Type.Union([Type.Literal('inputs'), Type.Literal('outputs'), Type.Literal('shadow')]),
  file: Type.String({ maxLength: 300 }),
})

const LabelBody = Type.Object(
  {
    deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    sampleId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    label: Type.Unknown(),
    source: Type.String({ minLength: 1, maxLength: 128 }),
    ts: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
)

/** Rows read per query while streaming: bounds the memory of one stream. */
const PAGE = 1000
/** Idle followers get a heartbeat this often, so proxies keep the connection [EF-9.6]. */
const HEARTBEAT_MS = 15_000

export const feedRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  // Followers end when the server closes, or app.close() would wait for them forever.
  const followers: Followers = { stops: new Set(), sockets: new Set() }
  app.addHook('preClose', (done) => {
    for (const stop of followers.stops) stop()
    // A follower whose client vanished mid-stream may leave a half-open socket: close them all.
    for (const sock of followers.sockets) sock.destroy()
    done()
  })
  feedStreamRoute(app, deps, followers)
  sampleRoutes(app, deps)
  labelRoute(app, deps)
}

/** The open follow streams, ended when the server closes. */
interface Followers {
  stops: Set<() => void>
  sockets: Set<Socket>
}

/** GET /api/v1/feed: NDJSON pages by cursor, and with `follow` new records as they commit [EF-9.6]. */
function feedStreamRoute(app: FastifyInstance, deps: ApiDeps, followers: Followers): void {
  const feed = deps.store.telemetry.feed
  app.get(
    '/api/v1/feed',
    { schema: { querystring: FeedQuery, produces: ['application/x-ndjson'] } },
    async (req, res) => {
      const query = req.query as Static<typeof FeedQuery>
      // The first page is read before the answer starts, so an expired cursor is a proper 410 [EF-9.3].
      const first = feed.page({ model: query.model, since: query.since, limit: Math.min(PAGE, query.limit) })
      const stream: FeedStream = { query, page: first, cursor: query.since ?? 0, closed: false }
      // The response's close: the client went away (the request's own close fires once its body is read).
      res.raw.once('close', () => (stream.closed = true))
      if (query.follow) {
        const sock = req.raw.socket
        followers.sockets.add(sock)
        sock.once('close', () => followers.sockets.delete(sock))
      }
      const stop = () => {
        stream.closed = true
        res.raw.emit('close') // wakes a waiting follower; the stream then ends
      }
      async function* lines(): AsyncGenerator<string> {
        followers.stops.add(stop)
        try {
          yield* feedLines(stream, feed, res.raw, deps.retraining?.live)
        } finally {
          followers.stops.delete(stop)
        }
      }
      res.header('content-type', 'application/x-ndjson; charset=utf-8')
      res.header('cache-control', 'no-store')
      return res.send(Readable.from(lines()))
    },
  )
}

/** Where one feed stream stands: the page to send next, the cursor after what was sent. */
interface FeedStream {
  query: Static<typeof FeedQuery>
  page: FeedLine[]
  cursor: number
  closed: boolean
}

/** The NDJSON chunks of one stream: pages until `limit`, or (following) forever with heartbeats. */
async function* feedLines(
  stream: FeedStream,
  feed: HubStore['telemetry']['feed'],
  response: ServerResponse,
  live: FeedLive | undefined,
): AsyncGenerator<string> {
  const { query } = stream
  let left = query.follow ? Number.POSITIVE_INFINITY : query.limit
  // A follower learns at once that it is connected and where it stands (headers go out with the first line).
  if (query.follow && stream.page.length === 0)
    yield JSON.stringify({ kind: 'heartbeat', cursor: stream.cursor }) + '\n'
  for (;;) {
    const { page } = stream
    if (page.length) {
      let chunk = ''
      for (const record of page) chunk += record.line + '\n'
      stream.cursor = page[page.length - 1].cursor
      left -= page.length
      yield chunk
    }
    if (left <= 0 || stream.closed) return
    if (page.length < Math.min(PAGE, left) || page.length === 0) {
      if (!query.follow) return
      // Caught up: wait for the next commit or send a heartbeat.
      const woke = await nextCommit(live, response)
      if (stream.closed) return
      if (!woke) yield JSON.stringify({ kind: 'heartbeat', cursor: stream.cursor }) + '\n'
    }
    stream.page = feed.page({ model: query.model, since: stream.cursor, limit: Math.min(PAGE, left) })
  }
}

/** Resolves true on the next feed commit, false after HEARTBEAT_MS or when the response closes. */
function nextCommit(live: FeedLive | undefined, response: ServerResponse): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false), HEARTBEAT_MS)
    const onCommit = () => done(true)
    const onClose = () => done(false)
    function done(committed: boolean) {
      clearTimeout(timer)
      live?.off('committed', onCommit)
      response.off('close', onClose)
      resolve(committed)
    }
    live?.on('committed', onCommit)
    response.once('close', onClose)
  })
}

/** A captured sample's JSON and its tensors as .npy [EF-9.8]. */
function sampleRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const samplePayload = (deviceId: string, sampleId: string): string => {
    const text = deps.store.telemetry.samples.payloadText(deviceId, sampleId)
    if (text === undefined) throw new EdgeFleetError('EF_ERR_SAMPLE_NOT_FOUND', `${deviceId}/${sampleId}`)
    return text
  }

  app.get('/api/v1/samples/:deviceId/:sampleId', { schema: { params: SampleParams } }, async (req, res) => {
    const params = req.params as Static<typeof SampleParams>
    return res
      .header('content-type', 'application/json; charset=utf-8')
      .send(samplePayload(params.deviceId, params.sampleId))
  })

  app.get(
    '/api/v1/samples/:deviceId/:sampleId/tensors/:group/:file',
    { schema: { params: TensorParams } },
    async (req, res) => {
      const params = req.params as Static<typeof TensorParams>
      const sample = JSON.parse(samplePayload(params.deviceId, params.sampleId)) as Sample
      const name = params.file.endsWith('.npy') ? params.file.slice(0, -4) : params.file
      const group: Record<string, TensorValue> | undefined =
        params.group === 'shadow' ? sample.shadow?.outputs : sample[params.group]
      const tensor = group && Object.prototype.hasOwnProperty.call(group, name) ? group[name] : undefined
      if (!tensor)
        throw new EdgeFleetError(
          'EF_ERR_SAMPLE_NOT_FOUND',
          `${params.deviceId}/${params.sampleId} has no ${params.group} tensor ${JSON.stringify(name)}`,
        )
      return res.header('content-type', 'application/octet-stream').send(npyOfTensor(name, tensor))
    },
  )
}

/** POST /api/v1/labels: a label about a captured sample or a model, appended to the feed [EF-9.10]. */
function labelRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/api/v1/labels',
    { schema: { body: LabelBody, response: { 201: Type.Object({ cursor: Type.Integer() }) } } },
    async (req, res) => {
      const body = req.body as Static<typeof LabelBody>
      const json = JSON.stringify(body.label ?? null)
      if (json.length > 16 * 1024) throw new EdgeFleetError('EF_ERR_MSG_TOO_LARGE', 'a label is at most 16 KiB of JSON')
      const { model, version } = labelSubject(deps, body)
      const line = deps.store.telemetry.feed.appendOne(
        {
          model: model,
          version,
          kind: 'label',
          body: {
            deviceId: body.deviceId ?? null,
            sampleId: body.sampleId ?? null,
            ts: body.ts ?? deps.now(),
            label: body.label ?? null,
            source: body.source,
            by: req.principal?.name ?? null,
          },
        },
        deps.now(),
      )
      deps.retraining?.live.committed([line])
      return res.status(201).send({ cursor: line.cursor })
    },
  )
}

/** The model and version a label is about: its sample's, or the ones the body names. */
function labelSubject(deps: ApiDeps, body: Static<typeof LabelBody>): { model: string; version: string | null } {
  let model = body.model
  let version = body.version ?? null
  if (body.sampleId !== undefined || body.deviceId !== undefined) {
    if (!body.sampleId || !body.deviceId)
      throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', 'a sample label needs both deviceId and sampleId')
    const payload = deps.store.telemetry.samples.payloadText(body.deviceId, body.sampleId)
    if (payload === undefined) throw new EdgeFleetError('EF_ERR_SAMPLE_NOT_FOUND', `${body.deviceId}/${body.sampleId}`)
    const parsed = JSON.parse(payload) as Sample
    model = parsed.model
    version = parsed.version
  }
  if (!model)
    throw new EdgeFleetError(
      'EF_ERR_HTTP_BAD_REQUEST',
      'name the sample (deviceId, sampleId) or the model the label is about',
    )
  return { model, version }
}
