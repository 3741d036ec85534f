// Bulk provisioning [EF-1.3.5]: `POST /api/v1/devices:batch` takes up to
// 10,000 devices and provisions all of them or none. Every row is checked
// before anything is written; the first bad one refuses the whole import with
// its row number and its own code, and the insert is one transaction.
import { randomBytes } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { EdgeFleetError, Id, isValidId, sha256Hex, type ErrorCode } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import { mosquittoHashAsync } from '../../broker/mosquitto.js'
import { natsHashAsync } from '../../broker/nats.js'
import { isDuplicateKey, type NewDevice } from '../../store/index.js'
import { Tags } from './devices.js'

/** Most devices one import may carry (one transaction, one response holding every secret). */
const MAX_IMPORT_DEVICES = 10_000

const ImportRow = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 64 }),
    profile: Type.String({ minLength: 1, maxLength: 64 }),
    tags: Type.Optional(Tags),
  },
  { additionalProperties: false },
)
type ImportRow = Static<typeof ImportRow>
const rowCheck = TypeCompiler.Compile(ImportRow)

const BatchBody = Type.Object(
  { devices: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_IMPORT_DEVICES }) },
  { additionalProperties: false },
)

const BatchOut = Type.Object({
  imported: Type.Integer(),
  hubPublicKey: Type.String(),
  mqttUrl: Type.String(),
  /** Each device's secret, shown only here. */
  devices: Type.Array(Type.Object({ id: Id, secret: Type.String() })),
})

/** The error refusing the import: row numbers count devices from 1, in the order sent. */
const rowError = (row: number, code: ErrorCode, detail: string) =>
  new EdgeFleetError('EF_ERR_IMPORT_ROW_INVALID', `row ${row}: ${code}: ${new EdgeFleetError(code, detail).message}`)

/** Checks every row against the schema, the id shape, the profiles, each other and the store; throws at the first bad one. */
function checkRows(deps: ApiDeps, rows: unknown[]): ImportRow[] {
  const seen = new Map<string, number>()
  const out: ImportRow[] = []
  rows.forEach((raw, i) => {
    const row = i + 1
    if (!rowCheck.Check(raw)) {
      const first = rowCheck.Errors(raw).First()
      throw rowError(row, 'EF_ERR_HTTP_BAD_REQUEST', first ? `${first.path || '/'} ${first.message}` : 'invalid')
    }
    if (!isValidId(raw.id)) throw rowError(row, 'EF_ERR_DEVICE_ID_INVALID', raw.id)
    if (deps.brokerAcceptsId?.(raw.id) === false)
      throw rowError(row, 'EF_ERR_BROKER_ID_UNSUPPORTED', `${raw.id}: the NATS cluster refuses MQTT topics with '.'`)
    if (!deps.profiles.has(raw.profile)) throw rowError(row, 'EF_ERR_PROFILE_UNKNOWN', raw.profile)
    const twin = seen.get(raw.id)
    if (twin !== undefined) throw rowError(row, 'EF_ERR_DEVICE_EXISTS', `${raw.id} is also row ${twin}`)
    seen.set(raw.id, row)
    out.push(raw)
  })
  const taken = deps.store.devices.statuses(out.map((r) => r.id))
  out.forEach((r, i) => {
    const status = taken.get(r.id)
    if (status === 'removed')
      throw rowError(i + 1, 'EF_ERR_DEVICE_REMOVED', `${r.id}: provision the replacement under a new id`)
    if (status) throw rowError(i + 1, 'EF_ERR_DEVICE_EXISTS', r.id)
  })
  return out
}

export const deviceImportRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.post(
    // `::` is find-my-way's literal colon (Google's custom-method style, as in `devices:batch`).
    '/api/v1/devices::batch',
    {
      config: { role: 'admin' },
      bodyLimit: 16 * 1024 * 1024,
      schema: { body: BatchBody, response: { 201: BatchOut } },
    },
    async (req, res) => {
      const rows = checkRows(deps, (req.body as Static<typeof BatchBody>).devices)
      // 256-bit random secrets as in single provisioning; Mosquitto hashes on the thread pool.
      const secrets = rows.map(() => randomBytes(32).toString('base64url'))
      const brokerHashes = await Promise.all(secrets.map((s) => mosquittoHashAsync(s)))
      const natsHashes = await Promise.all(secrets.map((s) => natsHashAsync(s)))
      const news: NewDevice[] = rows.map((r, i) => ({
        id: r.id,
        profile: r.profile,
        tags: r.tags ?? {},
        secretHash: sha256Hex(secrets[i]),
        brokerHash: brokerHashes[i],
        natsHash: natsHashes[i],
      }))
      try {
        deps.store.devices.insertMany(news, deps.now())
      } catch (err) {
        // Provisioned by someone else while the hashes were computed: the transaction wrote nothing.
        if (isDuplicateKey(err)) checkRows(deps, rows)
        throw err
      }
      deps.onDevicesChanged?.()
      return res.status(201).send({
        imported: rows.length,
        hubPublicKey: deps.keys.publicKey,
        mqttUrl: deps.mqttUrl,
        devices: rows.map((r, i) => ({ id: r.id, secret: secrets[i] })),
      })
    },
  )
}
