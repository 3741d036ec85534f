// The retraining feed over HTTP [EF-9.6]: NDJSON by cursor (optionally
// following new records), the bytes of captured samples [EF-9.8] and labels
// posted by devices or applications [EF-9.10].
import { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { EdgeFleetError, npyOfTensor, type Sample, type TensorValue } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import type { FeedLine } from '../../store/index.js'

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
  const feed = deps.store.telemetry.feed
  // Followers end when the server closes, or app.close() would wait for them forever.
  const followers = new Set<() => void>()
  const followSockets = new Set<Socket>()
  app.addHook('preClose', (done) => {
    for (const stop of followers) stop()
    // A follower whose client vanished mid-stream may leave a half-open socket: close them all.
    for (const sock of followSockets) sock.destroy()
    done()
  })

  app.get(
    '/api/v1/feed',
    { schema: { querystring: FeedQuery, produces: ['application/x-ndjson'] } },
    async (req, res) => {
      const query = req.query as Static<typeof FeedQuery>
      // The first page is read before the answer starts, so an expired cursor is a proper 410 [EF-9.3].
      let page: FeedLine[] = feed.page({ model: query.model, since: query.since, limit: Math.min(PAGE, query.limit) })
      let cursor = query.since ?? 0
      let left = query.follow ? Number.POSITIVE_INFINITY : query.limit
      let closed = false
      // The response's close: the client went away (the request's own close fires once its body is read).
      res.raw.once('close', () => (closed = true))
      if (query.follow) {
        const sock = req.raw.socket
        followSockets.add(sock)
        sock.once('close', () => followSockets.delete(sock))
      }
      const stop = () => {
        closed = true
        res.raw.emit('close') // wakes a waiting follower; the stream then ends
      }
      const live = deps.retraining?.live
      async function* lines(): AsyncGenerator<string> {
        followers.add(stop)
        try {
          yield* body()
        } finally {
          followers.delete(stop)
        }
      }
      async function* body(): AsyncGenerator<string> {
        // A follower learns at once that it is connected and where it stands (headers go out with the first line).
        if (query.follow && page.length === 0) yield JSON.stringify({ kind: 'heartbeat', cursor }) + '\n'
        for (;;) {
          if (page.length) {
            let chunk = ''
            for (const l of page) chunk += l.line + '\n'
            cursor = page[page.length - 1].cursor
            left -= page.length
            yield chunk
          }
          if (left <= 0 || closed) return
          if (page.length < Math.min(PAGE, left) || page.length === 0) {
            if (!query.follow) return
            // Caught up: wait for the next commit or send a heartbeat.
            const woke = await new Promise<boolean>((resolve) => {
              const t = setTimeout(() => done(false), HEARTBEAT_MS)
              const onCommit = () => done(true)
              const onClose = () => done(false)
              function done(v: boolean) {
                clearTimeout(t)
                live?.off('committed', onCommit)
                res.raw.off('close', onClose)
                resolve(v)
              }
              live?.on('committed', onCommit)
              res.raw.once('close', onClose)
            })
            if (closed) return
            if (!woke) yield JSON.stringify({ kind: 'heartbeat', cursor }) + '\n'
          }
          page = feed.page({ model: query.model, since: cursor, limit: Math.min(PAGE, left) })
        }
      }
      res.header('content-type', 'application/x-ndjson; charset=utf-8')
      res.header('cache-control', 'no-store')
      return res.send(Readable.from(lines()))
    },
  )

  const samplePayload = (deviceId: string, sampleId: string): string => {
    const text = deps.store.telemetry.samples.payloadText(deviceId, sampleId)
    if (text === undefined) throw new EdgeFleetError('EF_ERR_SAMPLE_NOT_FOUND', `${deviceId}/${sampleId}`)
    return text
  }

  app.get('/api/v1/samples/:deviceId/:sampleId', { schema: { params: SampleParams } }, async (req, res) => {
    const p = req.params as Static<typeof SampleParams>
    return res.header('content-type', 'application/json; charset=utf-8').send(samplePayload(p.deviceId, p.sampleId))
  })

  app.get(
    '/api/v1/samples/:deviceId/:sampleId/tensors/:group/:file',
    { schema: { params: TensorParams } },
    async (req, res) => {
      const p = req.params as Static<typeof TensorParams>
      const s = JSON.parse(samplePayload(p.deviceId, p.sampleId)) as Sample
      const name = p.file.endsWith('.npy') ? p.file.slice(0, -4) : p.file
      const group: Record<string, TensorValue> | undefined = p.group === 'shadow' ? s.shadow?.outputs : s[p.group]
      const t = group && Object.prototype.hasOwnProperty.call(group, name) ? group[name] : undefined
      if (!t)
        throw new EdgeFleetError(
          'EF_ERR_SAMPLE_NOT_FOUND',
          `${p.deviceId}/${p.sampleId} has no ${p.group} tensor ${JSON.stringify(name)}`,
        )
      return res.header('content-type', 'application/octet-stream').send(npyOfTensor(name, t))
    },
  )

  app.post(
    '/api/v1/labels',
    { schema: { body: LabelBody, response: { 201: Type.Object({ cursor: Type.Integer() }) } } },
    async (req, res) => {
      const body = req.body as Static<typeof LabelBody>
      const json = JSON.stringify(body.label ?? null)
      if (json.length > 16 * 1024) throw new EdgeFleetError('EF_ERR_MSG_TOO_LARGE', 'a label is at most 16 KiB of JSON')
      let model = body.model
      let version = body.version ?? null
      if (body.sampleId !== undefined || body.deviceId !== undefined) {
        if (!body.sampleId || !body.deviceId)
          throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', 'a sample label needs both deviceId and sampleId')
        const s = deps.store.telemetry.samples.payloadText(body.deviceId, body.sampleId)
        if (s === undefined) throw new EdgeFleetError('EF_ERR_SAMPLE_NOT_FOUND', `${body.deviceId}/${body.sampleId}`)
        const parsed = JSON.parse(s) as Sample
        model = parsed.model
        version = parsed.version
      }
      if (!model)
        throw new EdgeFleetError(
          'EF_ERR_HTTP_BAD_REQUEST',
          'name the sample (deviceId, sampleId) or the model the label is about',
        )
      const line = feed.appendOne(
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
