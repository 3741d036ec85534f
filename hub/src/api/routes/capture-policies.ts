// Fleet capture policies [EF-8.15]: create, list, show, update and delete;
// each change is sent to the matching online devices at once and to the
// others when they reconnect. The privacy filter's hash key is the hub's and
// is never answered.
import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { CapturePrivacy, EdgeFleetError, Id } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import type {
  CapturePolicies,
  CapturePolicyInput,
  CapturePolicyPatch,
  CapturePolicyView,
} from '../../capture/policies.js'
import { selectorText, type Selector } from '../../rollouts/selector.js'

/** Caps when a policy names none: 10 MB captured per hour, 50 MB waiting on the device. */
const DEFAULT_MAX_BYTES_PER_HOUR = 10_000_000
const DEFAULT_MAX_BYTES_ON_DISK = 50_000_000

const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) })
const SelectorIn = Type.Union([
  Type.String({ minLength: 1, maxLength: 4096 }),
  Type.Object({}, { additionalProperties: true }),
])
const Fields = {
  name: Type.String({ minLength: 1, maxLength: 64 }),
  selector: SelectorIn,
  model: Id,
  random: Type.Number({ minimum: 0, maximum: 1 }),
  confidenceBelow: Type.Number({ minimum: 0, maximum: 1 }),
  disagreement: Type.Boolean(),
  maxBytesPerHour: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  maxBytesOnDisk: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  privacy: CapturePrivacy,
}

const CreateBody = Type.Object(
  {
    name: Type.Optional(Fields.name),
    selector: Fields.selector,
    model: Type.Optional(Fields.model),
    random: Type.Optional(Fields.random),
    confidenceBelow: Type.Optional(Fields.confidenceBelow),
    disagreement: Type.Optional(Fields.disagreement),
    maxBytesPerHour: Type.Optional(Fields.maxBytesPerHour),
    maxBytesOnDisk: Type.Optional(Fields.maxBytesOnDisk),
    privacy: Type.Optional(Fields.privacy),
  },
  { additionalProperties: false },
)
const PatchBody = Type.Object(
  {
    name: Type.Optional(Fields.name),
    selector: Type.Optional(Fields.selector),
    model: Type.Optional(Type.Union([Fields.model, Type.Null()])),
    random: Type.Optional(Fields.random),
    confidenceBelow: Type.Optional(Type.Union([Fields.confidenceBelow, Type.Null()])),
    disagreement: Type.Optional(Type.Union([Fields.disagreement, Type.Null()])),
    maxBytesPerHour: Type.Optional(Fields.maxBytesPerHour),
    maxBytesOnDisk: Type.Optional(Fields.maxBytesOnDisk),
    privacy: Type.Optional(Type.Union([Fields.privacy, Type.Null()])),
  },
  { additionalProperties: false },
)

const PolicyOut = Type.Object({
  id: Type.String(),
  name: Type.String(),
  selector: Type.Unknown(),
  selectorText: Type.String(),
  model: Type.Union([Type.String(), Type.Null()]),
  random: Type.Number(),
  confidenceBelow: Type.Optional(Type.Number()),
  disagreement: Type.Optional(Type.Boolean()),
  maxBytesPerHour: Type.Integer(),
  maxBytesOnDisk: Type.Integer(),
  privacy: Type.Optional(Type.Unknown()),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
  /** Active devices the selector matches now. */
  matched: Type.Integer(),
})
/** A change: the policy and how many online devices were sent their new list. */
const ChangeOut = Type.Object({ policy: PolicyOut, sent: Type.Integer() })

function toOut(policy: CapturePolicyView): Static<typeof PolicyOut> {
  // The hash key stays on the hub and the devices: with it, hashed inputs could be confirmed by guessing.
  const privacy = policy.body.privacy ? { ...policy.body.privacy, hashKey: undefined } : undefined
  return {
    id: policy.id,
    name: policy.name,
    selector: policy.selector,
    selectorText: selectorText(policy.selector as Selector),
    model: policy.model,
    random: policy.body.random,
    ...(policy.body.confidenceBelow !== undefined ? { confidenceBelow: policy.body.confidenceBelow } : {}),
    ...(policy.body.disagreement !== undefined ? { disagreement: policy.body.disagreement } : {}),
    maxBytesPerHour: policy.body.maxBytesPerHour,
    maxBytesOnDisk: policy.body.maxBytesOnDisk,
    ...(privacy ? { privacy } : {}),
    createdAt: policy.createdAt,
    updatedAt: policy.updatedAt,
    matched: policy.matched,
  }
}

export const capturePolicyRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const policies = (): CapturePolicies => {
    if (!deps.capturePolicies) throw new EdgeFleetError('EF_ERR_INTERNAL', 'capture policies not configured')
    return deps.capturePolicies
  }
  const idOf = (req: { params: unknown }) => (req.params as Static<typeof Params>).id

  app.get(
    '/api/v1/capture-policies',
    { schema: { response: { 200: Type.Object({ items: Type.Array(PolicyOut) }) } } },
    async () => ({
      items: policies().list().map(toOut),
    }),
  )
  app.get('/api/v1/capture-policies/:id', { schema: { params: Params, response: { 200: PolicyOut } } }, async (req) =>
    toOut(policies().get(idOf(req))),
  )
  app.post(
    '/api/v1/capture-policies',
    { schema: { body: CreateBody, response: { 201: ChangeOut } } },
    async (req, res) => {
      const b = req.body as Static<typeof CreateBody>
      const input: CapturePolicyInput = {
        ...b,
        random: b.random ?? 0,
        maxBytesPerHour: b.maxBytesPerHour ?? DEFAULT_MAX_BYTES_PER_HOUR,
        maxBytesOnDisk: b.maxBytesOnDisk ?? DEFAULT_MAX_BYTES_ON_DISK,
      }
      const r = await policies().create(input)
      return res.status(201).send({ policy: toOut(r.policy), sent: r.sent })
    },
  )
  app.patch(
    '/api/v1/capture-policies/:id',
    { schema: { params: Params, body: PatchBody, response: { 200: ChangeOut } } },
    async (req) => {
      const r = await policies().update(idOf(req), req.body as CapturePolicyPatch)
      return { policy: toOut(r.policy), sent: r.sent }
    },
  )
  app.delete(
    '/api/v1/capture-policies/:id',
    {
      schema: {
        params: Params,
        response: { 200: Type.Object({ id: Type.String(), deleted: Type.Boolean(), sent: Type.Integer() }) },
      },
    },
    async (req) => ({ ...(await policies().delete(idOf(req))), deleted: true }),
  )
}
