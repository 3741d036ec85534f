// The error catalogue: every failure EdgeFleet reports on the wire, over HTTP or
// on the command line carries one of these stable codes. Codes are never reused
// or renamed; shared/PROTOCOL.md documents each one (a test enforces both).

export interface ErrorSpec {
  /** HTTP status the API answers with when this error reaches a client. */
  readonly status: number
  /** What went wrong, for a human; details are appended by the thrower. */
  readonly message: string
}

export const ERRORS = {
  // Messages on the wire
  EF_ERR_MSG_JSON: { status: 400, message: 'payload is not valid JSON' },
  EF_ERR_MSG_SCHEMA: { status: 400, message: 'payload does not match the message schema' },
  EF_ERR_MSG_TOO_LARGE: { status: 413, message: 'payload is larger than the limit for this message type' },
  EF_ERR_TOPIC_UNKNOWN: { status: 400, message: 'topic is not part of the ef/v1 protocol' },
  EF_ERR_TOPIC_DEVICE_MISMATCH: { status: 403, message: 'message names a different device than its topic' },

  // Broker authentication and authorization
  EF_ERR_AUTH_BAD_CREDENTIALS: { status: 401, message: 'unknown device or wrong secret' },
  EF_ERR_AUTH_FORBIDDEN_PUBLISH: { status: 403, message: 'this client may not publish on that topic' },
  EF_ERR_AUTH_FORBIDDEN_SUBSCRIBE: { status: 403, message: 'this client may not subscribe to that topic' },
  EF_ERR_AUTH_CLIENT_ID_FORBIDDEN: { status: 403, message: 'this credential may not use that MQTT client id' },
  EF_ERR_AUTH_CERT_INVALID: {
    status: 401,
    message: 'client certificate does not chain to the hub CA, or names no provisioned and enabled device',
  },

  // Transport security [EF-10]
  EF_ERR_INSECURE_BIND: {
    status: 400,
    message: 'plain MQTT or HTTP on a non-loopback address: enable TLS (--tls) or say --insecure',
  },
  EF_ERR_TLS_UNTRUSTED_PEER: {
    status: 502,
    message: "the hub's certificate does not chain to the configured CA (or does not name the host connected to)",
  },
  EF_ERR_TLS_FILE_INVALID: { status: 400, message: 'a TLS certificate, key or CA file is missing or unreadable' },
  EF_ERR_TLS_DISABLED: { status: 409, message: 'the hub runs without TLS, so it has no CA to issue certificates' },

  // Broker limits
  EF_ERR_BROKER_PACKET_TOO_LARGE: {
    status: 413,
    message: 'MQTT packet larger than this connection may send; connection closed',
  },
  EF_ERR_BROKER_CONNECT_TIMEOUT: { status: 408, message: 'no complete MQTT CONNECT in time; connection closed' },
  EF_ERR_BROKER_TOO_MANY_CONNECTIONS: {
    status: 429,
    message: 'too many connections from this address, or not yet authenticated; connection closed',
  },
  EF_ERR_BROKER_RETAIN_REFUSED: {
    status: 403,
    message: 'only a device state up to the retained size limit is retained; delivered without retain',
  },
  EF_ERR_BROKER_QUOTA_EXCEEDED: { status: 429, message: 'device is over its publish quota' },
  EF_ERR_BROKER_ID_UNSUPPORTED: {
    status: 400,
    message: "the external broker cannot carry this device id's topics (a NATS cluster: ids with '.')",
  },

  // Signatures, artifacts and updates
  EF_ERR_SIGNATURE_INVALID: { status: 400, message: 'signature does not verify against the pinned hub key' },
  EF_ERR_HUB_KEY_CHAIN_INVALID: {
    status: 400,
    message: 'hub key announcement does not lead from the trusted key to the key that signed it',
  },
  EF_ERR_CHUNK_HASH_MISMATCH: { status: 400, message: 'chunk content does not match its sha256 in the manifest' },
  EF_ERR_ARTIFACT_HASH_MISMATCH: {
    status: 400,
    message: 'assembled artifact does not match its sha256 in the manifest',
  },
  EF_ERR_ARTIFACT_SIZE_MISMATCH: { status: 400, message: 'assembled artifact size differs from the manifest' },
  EF_ERR_MANIFEST_PROFILE_MISMATCH: { status: 400, message: 'manifest was built for a different device profile' },
  EF_ERR_AGENT_TOO_OLD: {
    status: 409,
    message: 'the build needs a newer agent or ONNX Runtime than this device runs; update the agent',
  },
  EF_ERR_DOWNGRADE_REFUSED: {
    status: 409,
    message: 'version is older than the active one and the command is not a signed rollback',
  },
  EF_ERR_HEALTH_CHECK_FAILED: {
    status: 500,
    message: 'staged model did not reproduce the reference outputs within tolerance',
  },
  EF_ERR_MODEL_LOAD_FAILED: { status: 500, message: 'ONNX Runtime could not load the model' },
  EF_ERR_DOWNLOAD_TIMEOUT: { status: 504, message: 'artifact chunks did not arrive in time' },
  EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE: {
    status: 502,
    message: 'an HTTP artifact source (origin or hub) failed: unreachable, an error status, stalled or too slow',
  },
  EF_ERR_DEPLOY_PENDING: { status: 504, message: 'deployment not finished before the timeout: devices still pending' },
  EF_ERR_DEPLOY_SUPERSEDED: {
    status: 409,
    message: 'a newer deployment of the model replaced this held one before it was sent',
  },
  EF_ERR_NO_ROLLBACK_TARGET: { status: 409, message: 'no previous verified version to roll back to' },
  EF_ERR_STORAGE_FULL: { status: 507, message: 'not enough storage on the device' },
  EF_ERR_STORAGE_IO: { status: 500, message: 'the device storage failed a read or write (I/O error)' },
  EF_ERR_CONNECTION_LOST: { status: 503, message: 'the connection to the broker dropped during the operation' },

  // Registry
  EF_ERR_MODEL_INVALID: { status: 400, message: 'file is not a loadable ONNX model' },
  EF_ERR_MODEL_NOT_FOUND: { status: 404, message: 'no such model or version' },
  EF_ERR_VERSION_EXISTS: { status: 409, message: 'this model version is already registered' },
  EF_ERR_VERSION_INVALID: { status: 400, message: 'version must be dot-separated numbers, e.g. 1.2.0' },
  EF_ERR_NAME_INVALID: { status: 400, message: 'name must be 1-64 characters of letters, digits, ".", "_" or "-"' },
  EF_ERR_BUILD_NOT_FOUND: { status: 404, message: 'no successful build of this version for that profile' },
  EF_ERR_BUILD_FAILED: { status: 422, message: 'the build could not be produced for this profile' },
  EF_ERR_BUILD_OVER_BUDGET: {
    status: 422,
    message: "no build of this model fits the profile's budgets (accuracy, storage, RAM, latency)",
  },
  EF_ERR_MODEL_SHAPE_REQUIRED: {
    status: 422,
    message: 'the model does not run with guessed sizes for its symbolic dimensions; give their shapes',
  },
  EF_ERR_MODEL_RUN_FAILED: {
    status: 422,
    message: 'the float model does not run on the inputs made from its shapes and the given values; check them',
  },
  EF_ERR_MODEL_META_INVALID: {
    status: 400,
    message: 'the model metadata (--meta) is malformed or does not fit the model; fix the named field',
  },
  EF_ERR_CALIBRATION_INVALID: {
    status: 400,
    message: 'calibration tensors do not match the model inputs (shape, type) or the folder holds none',
  },
  EF_ERR_OPSET_OUT_OF_RANGE: { status: 422, message: "model opset is outside the profile's supported range" },

  // Fleet
  EF_ERR_DEVICE_EXISTS: { status: 409, message: 'a device with this id is already provisioned' },
  EF_ERR_DEVICE_NOT_FOUND: { status: 404, message: 'no such device' },
  EF_ERR_DEVICE_ID_INVALID: {
    status: 400,
    message: 'device id must be 1-64 characters of letters, digits, ".", "_" or "-"',
  },
  EF_ERR_PROFILE_UNKNOWN: { status: 400, message: 'no firmware profile with this id' },
  EF_ERR_PROFILE_INVALID: { status: 400, message: 'firmware profile file does not match the profile schema' },
  EF_ERR_TARGET_INVALID: { status: 400, message: 'target must be profile=P, tag=k=v or device=ID' },
  EF_ERR_TARGET_EMPTY: { status: 409, message: 'no provisioned device matches the target' },
  EF_ERR_DEPLOYMENT_NOT_FOUND: { status: 404, message: 'no such deployment' },
  EF_ERR_DEVICE_REMOVED: {
    status: 409,
    message: 'the device was removed; its id keeps its history and is never provisioned or enabled again',
  },

  EF_ERR_IMPORT_ROW_INVALID: {
    status: 400,
    message: 'a row of the bulk import is invalid; nothing was imported',
  },

  // API tokens [EF-8.9]
  EF_ERR_AUTH_TOKEN_INVALID: {
    status: 401,
    message: 'missing, unknown or revoked API token; send Authorization: Bearer <token>',
  },
  EF_ERR_AUTH_FORBIDDEN_ROLE: { status: 403, message: "this token's role may not do that" },
  EF_ERR_TOKEN_NOT_FOUND: { status: 404, message: 'no such API token' },
  EF_ERR_AUTH_TOKEN_EXPIRED: { status: 401, message: 'the API token has expired' },

  // Rollouts [EF-8]
  EF_ERR_SELECTOR_INVALID: { status: 400, message: 'rollout selector is invalid' },
  EF_ERR_WAVES_INVALID: { status: 400, message: 'rollout waves are invalid' },
  EF_ERR_GATES_INVALID: { status: 400, message: 'rollout health gates are invalid' },
  EF_ERR_SCHEDULE_INVALID: { status: 400, message: 'rollout schedule is invalid' },
  EF_ERR_ROLLOUT_NOT_FOUND: { status: 404, message: 'no such rollout' },
  EF_ERR_ROLLOUT_DOWNGRADE: {
    status: 409,
    message: 'the version is older than what matched devices run; create the rollout as a rollback',
  },
  EF_ERR_ROLLOUT_STATE: { status: 409, message: "the action is not allowed in the rollout's current state" },

  // Fleet capture policies [EF-8.15]
  EF_ERR_CAPTURE_POLICY_NOT_FOUND: { status: 404, message: 'no such capture policy' },
  EF_ERR_CAPTURE_POLICY_INVALID: {
    status: 400,
    message: "capture policy's privacy filter is inconsistent with itself or with the model's inputs",
  },
  EF_ERR_CAPTURE_REGION_INVALID: {
    status: 400,
    message: 'a blanked region does not fit an image input of the model',
  },

  // Retraining loop [EF-9]
  EF_ERR_FEED_CURSOR_EXPIRED: {
    status: 410,
    message:
      'feed records after this cursor were removed by retention; restart from the cursor given in the message or from 0',
  },
  EF_ERR_SAMPLE_NOT_FOUND: { status: 404, message: 'no such captured sample (or tensor in it)' },
  EF_ERR_BASELINE_INVALID: {
    status: 400,
    message: 'baseline does not match the model: unknown input, or bins of the wrong length',
  },
  EF_ERR_TELEMETRY_UNKNOWN_VERSION: {
    status: 403,
    message: 'telemetry names a model version this device was never sent; those entries are dropped',
  },
  EF_ERR_DEVICE_HEALTH_THRESHOLD: {
    status: 409,
    message: "a device's health stats crossed a threshold of its profile",
  },
  EF_ERR_NPY_INVALID: {
    status: 400,
    message: 'not a readable NumPy .npy file (magic, version, header, dtype, shape or data size)',
  },
  EF_ERR_ARCHIVE_INVALID: { status: 400, message: 'not a readable tar archive, or an entry breaks its limits' },
  EF_ERR_PARENT_INVALID: { status: 400, message: 'parent must be MODEL@VERSION of a registered version' },
  EF_ERR_INGEST_UNAVAILABLE: {
    status: 503,
    message: 'the hub could not store this message now; it was not acknowledged and will be sent again',
  },
  EF_ERR_STORE_UNAVAILABLE: {
    status: 503,
    message: "the hub's database cannot be reached (PostgreSQL down or restarting); nothing was changed, retry shortly",
  },
  EF_ERR_STREAM_MESSAGE: {
    status: 422,
    message: 'a message in the telemetry stream cannot be applied (subject, device or payload); it was terminated',
  },

  // Local inference API
  EF_ERR_INFER_MODEL_NOT_LOADED: { status: 404, message: 'no model with this name is being served' },
  EF_ERR_INFER_BAD_TENSOR: { status: 400, message: 'input tensors do not match the model (name, type or shape)' },
  EF_ERR_INFER_BODY_TOO_LARGE: { status: 413, message: 'request body exceeds the configured limit' },
  EF_ERR_HTTP_HOST_FORBIDDEN: {
    status: 421,
    message: 'the local API answers only requests addressed to localhost, 127.0.0.1 or [::1]',
  },
  EF_ERR_SHADOW_NOT_FOUND: { status: 409, message: 'the device holds no such shadow candidate' },
  EF_ERR_INFER_FAILED: { status: 500, message: 'ONNX Runtime failed to run the model' },

  // HTTP and configuration
  EF_ERR_HTTP_BAD_REQUEST: { status: 400, message: 'request does not match the route schema' },
  EF_ERR_HTTP_NOT_FOUND: { status: 404, message: 'no such route' },
  EF_ERR_HTTP_RANGE: { status: 416, message: 'requested range is outside the artifact' },
  EF_ERR_CONFIG_INVALID: { status: 400, message: 'configuration is invalid' },
  EF_ERR_LISTEN_FAILED: {
    status: 500,
    message: 'could not listen on the configured address (port in use, not allowed, or no such address)',
  },
  EF_ERR_INTERNAL: { status: 500, message: 'internal error' },

  // Agent packages [EF-11]
  EF_ERR_PACKAGE_ARCH: {
    status: 400,
    message: 'the agent package is for another architecture than asked for or than the machine has',
  },
  EF_ERR_PACKAGE_NODE: { status: 400, message: 'the machine has no Node.js, or one older than the package needs' },
  EF_ERR_PACKAGE_INPUT: {
    status: 500,
    message: 'a file the agent package is built from is missing (build the workspace first)',
  },

  // Agent self-update [EF-11.3 - EF-11.8]
  EF_ERR_AGENT_PACKAGE_INVALID: {
    status: 400,
    message:
      'not a valid agent package (unreadable archive, missing or wrong edgefleet-package.json, or a file whose sha256 differs)',
  },
  EF_ERR_AGENT_VERSION_MISMATCH: {
    status: 400,
    message: "the version given does not match the package's own edgefleet-package.json",
  },
  EF_ERR_AGENT_RELEASE_EXISTS: {
    status: 409,
    message: 'an agent release of this version and architecture is already registered with other contents',
  },
  EF_ERR_AGENT_RELEASE_NOT_FOUND: { status: 404, message: 'no agent release of that version for that architecture' },
  EF_ERR_AGENT_ARCH: {
    status: 409,
    message: "the agent package is for another architecture than this device's; nothing was written",
  },
  EF_ERR_AGENT_DOWNGRADE: {
    status: 409,
    message: 'the agent release is older than the running agent: send it as a signed rollback (--rollback)',
  },
  EF_ERR_AGENT_DIGEST_MISMATCH: {
    status: 422,
    message: "the downloaded agent package's size or sha256 differs from the signed release",
  },
  EF_ERR_AGENT_UPDATE_UNSUPPORTED: {
    status: 409,
    message:
      'this agent was not started by the package launcher (edgefleet-launch.mjs), so it has no slots to hand over to',
  },
  EF_ERR_AGENT_ROLLED_BACK: {
    status: 500,
    message:
      'the new agent did not start, reconnect and pass its health check within the deadline; the previous agent was restored',
  },
  EF_ERR_AGENT_CONFIRM_TIMEOUT: {
    status: 504,
    message:
      'the device handed over to the new agent but neither confirmed it nor reported a rollback within the deadline',
  },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, code)
}

/** An error with a stable code from the catalogue. `detail` says what exactly was wrong. */
export class EdgeFleetError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly detail?: string

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const spec = ERRORS[code]
    super(detail ? `${spec.message}: ${detail}` : spec.message, options)
    this.name = 'EdgeFleetError'
    this.code = code
    this.status = spec.status
    this.detail = detail
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message }
  }
}

/** Code of any thrown value: its own catalogue code, else EF_ERR_INTERNAL. */
export function codeOf(err: unknown): ErrorCode {
  const code = (err as { code?: unknown } | null)?.code
  return isErrorCode(code) ? code : 'EF_ERR_INTERNAL'
}

/**
 * The value an invariant of this code guarantees is there (a row just written, a graph a
 * decoded model always has). Missing means a bug, not bad input: it throws EF_ERR_INTERNAL
 * naming `what` instead of letting `undefined` travel on.
 */
export function defined<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) throw new EdgeFleetError('EF_ERR_INTERNAL', `${what} is missing`)
  return value
}
