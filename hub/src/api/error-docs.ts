// Which EF_ERR_* codes each API operation can answer with [EF-8.11], for the
// OpenAPI document's 4xx responses. Codes every route shares are derived from
// the route itself (a bad URL or input is EF_ERR_HTTP_BAD_REQUEST, /api/v1
// needs a token, a write needs a role, a body has a size limit); the codes a
// handler or what it calls throws are listed here by "METHOD /path". The HTTP
// fuzz test (hub/test/fuzz/api.test.ts) checks every 4xx it provokes against
// this list, so a code missing here fails a test instead of going undocumented.
import { ERRORS, type ErrorCode } from '@edgefleet/shared'

type Codes = readonly ErrorCode[]

const MODEL_REF: Codes = ['EF_ERR_MODEL_NOT_FOUND']
// A command that fails its own message schema once filled in (e.g. an over-long field) is EF_ERR_MSG_SCHEMA.
const DEVICE_CMD: Codes = [
  'EF_ERR_DEVICE_NOT_FOUND',
  'EF_ERR_MODEL_NOT_FOUND',
  'EF_ERR_BUILD_NOT_FOUND',
  'EF_ERR_MSG_SCHEMA',
]
const ROLLOUT_ACTION: Codes = ['EF_ERR_ROLLOUT_NOT_FOUND', 'EF_ERR_ROLLOUT_STATE']

/** Handler-specific codes, by "METHOD /openapi/path". */
export const ROUTE_ERRORS: Readonly<Record<string, Codes>> = {
  'GET /api/v1/artifacts/{digest}': ['EF_ERR_AUTH_BAD_CREDENTIALS', 'EF_ERR_BUILD_NOT_FOUND', 'EF_ERR_HTTP_RANGE'],
  'POST /api/v1/deployments': [
    'EF_ERR_MODEL_NOT_FOUND',
    'EF_ERR_TARGET_INVALID',
    'EF_ERR_TARGET_EMPTY',
    'EF_ERR_BUILD_FAILED',
    'EF_ERR_PROFILE_UNKNOWN',
    'EF_ERR_DOWNGRADE_REFUSED',
  ],
  'GET /api/v1/deployments/{id}': ['EF_ERR_DEPLOYMENT_NOT_FOUND'],
  'POST /api/v1/agent-releases': [
    'EF_ERR_AGENT_PACKAGE_INVALID',
    'EF_ERR_AGENT_RELEASE_EXISTS',
    'EF_ERR_AGENT_VERSION_MISMATCH',
  ],
  'GET /api/v1/agent-releases/{version}/{arch}/package': [
    'EF_ERR_AUTH_BAD_CREDENTIALS',
    'EF_ERR_AGENT_RELEASE_NOT_FOUND',
    'EF_ERR_HTTP_RANGE',
  ],
  'POST /api/v1/agent-updates': ['EF_ERR_TARGET_INVALID', 'EF_ERR_AGENT_RELEASE_NOT_FOUND'],
  'POST /api/v1/devices': [
    'EF_ERR_DEVICE_ID_INVALID',
    'EF_ERR_PROFILE_UNKNOWN',
    'EF_ERR_TLS_DISABLED',
    'EF_ERR_DEVICE_EXISTS',
    'EF_ERR_DEVICE_REMOVED',
  ],
  'POST /api/v1/devices:batch': ['EF_ERR_IMPORT_ROW_INVALID'],
  'GET /api/v1/devices/{id}': ['EF_ERR_DEVICE_NOT_FOUND'],
  'GET /api/v1/devices/{id}/health': ['EF_ERR_DEVICE_NOT_FOUND'],
  'POST /api/v1/devices/{id}/disable': ['EF_ERR_DEVICE_NOT_FOUND', 'EF_ERR_DEVICE_REMOVED'],
  'POST /api/v1/devices/{id}/enable': ['EF_ERR_DEVICE_NOT_FOUND', 'EF_ERR_DEVICE_REMOVED'],
  'DELETE /api/v1/devices/{id}': ['EF_ERR_DEVICE_NOT_FOUND'],
  'POST /api/v1/devices/{id}/rotate-secret': ['EF_ERR_DEVICE_NOT_FOUND', 'EF_ERR_DEVICE_REMOVED'],
  'POST /api/v1/devices/{id}/shadow': DEVICE_CMD,
  'POST /api/v1/devices/{id}/promote': DEVICE_CMD,
  'POST /api/v1/devices/{id}/discard': DEVICE_CMD,
  'POST /api/v1/devices/{id}/capture-policy': DEVICE_CMD,
  'POST /api/v1/devices/{id}/conditions': DEVICE_CMD,
  'POST /api/v1/capture-policies': [
    'EF_ERR_SELECTOR_INVALID',
    'EF_ERR_MODEL_NOT_FOUND',
    'EF_ERR_CAPTURE_POLICY_INVALID',
    'EF_ERR_CAPTURE_REGION_INVALID',
  ],
  'GET /api/v1/capture-policies/{id}': ['EF_ERR_CAPTURE_POLICY_NOT_FOUND'],
  'PATCH /api/v1/capture-policies/{id}': [
    'EF_ERR_CAPTURE_POLICY_NOT_FOUND',
    'EF_ERR_SELECTOR_INVALID',
    'EF_ERR_MODEL_NOT_FOUND',
    'EF_ERR_CAPTURE_POLICY_INVALID',
    'EF_ERR_CAPTURE_REGION_INVALID',
  ],
  'DELETE /api/v1/capture-policies/{id}': ['EF_ERR_CAPTURE_POLICY_NOT_FOUND'],
  'GET /api/v1/feed': ['EF_ERR_FEED_CURSOR_EXPIRED', 'EF_ERR_MODEL_NOT_FOUND'],
  'GET /api/v1/samples/{deviceId}/{sampleId}': ['EF_ERR_SAMPLE_NOT_FOUND'],
  'GET /api/v1/samples/{deviceId}/{sampleId}/tensors/{group}/{file}': ['EF_ERR_SAMPLE_NOT_FOUND'],
  'POST /api/v1/labels': ['EF_ERR_SAMPLE_NOT_FOUND', 'EF_ERR_MODEL_NOT_FOUND'],
  'POST /api/v1/models': [
    'EF_ERR_NAME_INVALID',
    'EF_ERR_VERSION_INVALID',
    'EF_ERR_VERSION_EXISTS',
    'EF_ERR_MODEL_INVALID',
    'EF_ERR_PARENT_INVALID',
    'EF_ERR_PROFILE_UNKNOWN',
    'EF_ERR_CALIBRATION_INVALID',
    'EF_ERR_MODEL_SHAPE_REQUIRED',
    'EF_ERR_OPSET_OUT_OF_RANGE',
    'EF_ERR_BUILD_FAILED',
  ],
  'GET /api/v1/models/{name}/versions/{version}': MODEL_REF,
  'POST /api/v1/drift/evaluate': MODEL_REF,
  'GET /api/v1/models/{name}/versions/{version}/baseline': MODEL_REF,
  'PUT /api/v1/models/{name}/versions/{version}/baseline': ['EF_ERR_MODEL_NOT_FOUND', 'EF_ERR_BASELINE_INVALID'],
  'GET /api/v1/models/{name}/lineage': MODEL_REF,
  'POST /api/v1/rollouts': [
    'EF_ERR_MODEL_NOT_FOUND',
    'EF_ERR_SELECTOR_INVALID',
    'EF_ERR_WAVES_INVALID',
    'EF_ERR_GATES_INVALID',
    'EF_ERR_SCHEDULE_INVALID',
    'EF_ERR_TARGET_EMPTY',
    'EF_ERR_ROLLOUT_STATE',
    'EF_ERR_DOWNGRADE_REFUSED',
    'EF_ERR_ROLLOUT_DOWNGRADE',
  ],
  'GET /api/v1/rollouts/{id}': ['EF_ERR_ROLLOUT_NOT_FOUND'],
  'GET /api/v1/rollouts/{id}/devices': ['EF_ERR_ROLLOUT_NOT_FOUND'],
  'POST /api/v1/rollouts/{id}/pause': ROLLOUT_ACTION,
  'POST /api/v1/rollouts/{id}/resume': ROLLOUT_ACTION,
  'POST /api/v1/rollouts/{id}/approve': ROLLOUT_ACTION,
  'POST /api/v1/rollouts/{id}/abort': ROLLOUT_ACTION,
  'POST /api/v1/rollouts/{id}/promote': ROLLOUT_ACTION,
  'POST /api/v1/rollouts/{id}/rollback': [
    'EF_ERR_ROLLOUT_NOT_FOUND',
    'EF_ERR_ROLLOUT_STATE',
    'EF_ERR_NO_ROLLBACK_TARGET',
  ],
  'DELETE /api/v1/tokens/{id}': ['EF_ERR_TOKEN_NOT_FOUND'],
}

const RANK = { none: 0, viewer: 1, operator: 2, admin: 3 } as const

export interface RouteFacts {
  method: string
  /** OpenAPI path, `{param}` style. */
  path: string
  hasBody: boolean
  /** Least role the route needs [EF-8.10] ('none' on open routes). */
  role: keyof typeof RANK
}

/** Every code the operation may answer with below 500, derived and listed. */
export function documentedErrors(r: RouteFacts): ErrorCode[] {
  const codes = new Set<ErrorCode>(['EF_ERR_HTTP_BAD_REQUEST']) // any URL may fail to decode [EF-6.2.1]
  if (r.role !== 'none') codes.add('EF_ERR_AUTH_TOKEN_INVALID').add('EF_ERR_AUTH_TOKEN_EXPIRED')
  if (RANK[r.role] > RANK.viewer) codes.add('EF_ERR_AUTH_FORBIDDEN_ROLE')
  if (r.hasBody) codes.add('EF_ERR_MSG_TOO_LARGE')
  for (const c of ROUTE_ERRORS[`${r.method.toUpperCase()} ${r.path}`] ?? []) codes.add(c)
  return [...codes].filter((c) => ERRORS[c].status < 500)
}

/** The codes grouped by their HTTP status, as OpenAPI responses. */
export function errorResponses(codes: readonly ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>()
  for (const c of codes) byStatus.set(ERRORS[c].status, [...(byStatus.get(ERRORS[c].status) ?? []), c])
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      String(status),
      {
        description: list.map((c) => `${c}: ${ERRORS[c].message}`).join('\n\n'),
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['error'],
              properties: {
                error: {
                  type: 'object',
                  required: ['code', 'message'],
                  properties: { code: { enum: list }, message: { type: 'string' } },
                },
              },
            },
          },
        },
      },
    ]),
  )
}
