// Firmware profile schema: one JSON file per device class in firmware-profiles/
// [EF-5]. Both hub and agent read profiles; the schema lives with the protocol.
import { Type, type Static } from '@sinclair/typebox'
import { codec } from './schema.js'
import { Id } from './messages/common.js'
import { Precision } from './messages/manifest.js'

export const ExecutionProvider = Type.Union([
  Type.Literal('cpu'),
  Type.Literal('cuda'),
  Type.Literal('tensorrt'),
  Type.Literal('openvino'),
  Type.Literal('nnapi'),
  Type.Literal('xnnpack'),
  Type.Literal('qnn'),
  Type.Literal('coreml'),
])

export const FirmwareProfile = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    id: Id,
    name: Type.String({ minLength: 1, maxLength: 120 }),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    arch: Type.Union([Type.Literal('x86_64'), Type.Literal('arm64'), Type.Literal('armv7')]),
    cores: Type.Integer({ minimum: 1, maximum: 256 }),
    /** Threads an inference session may use (defaults to cores). */
    threads: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
    ramMb: Type.Integer({ minimum: 64 }),
    /** Disk space the agent may use for model slots, chunks and queues. */
    storageBudgetMb: Type.Integer({ minimum: 16 }),
    accelerators: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 8 }),
    /** ONNX Runtime execution providers in order of preference; 'cpu' is always the last resort. */
    executionProviders: Type.Array(ExecutionProvider, { minItems: 1, maxItems: 8 }),
    /**
     * Whether the execution providers compute in fp16 (default: true when the list has a GPU/NPU EP:
     * cuda, tensorrt, coreml, nnapi, qnn). Then the compiler's fp16 build computes in fp16; else it
     * stores weights in fp16 and computes in fp32 [EF-5.3].
     */
    fp16Compute: Type.Optional(Type.Boolean()),
    /** Precisions the compiler may produce, most preferred first. */
    precisions: Type.Array(Precision, { minItems: 1, maxItems: 5 }),
    opset: Type.Object(
      { min: Type.Integer({ minimum: 1 }), max: Type.Integer({ minimum: 1 }) },
      { additionalProperties: false },
    ),
    /** Per-inference latency budget for the reference workload, in ms. */
    latencyBudgetMs: Type.Number({ exclusiveMinimum: 0 }),
    /**
     * How much slower one of the device's cores runs a model than one core of the hub's
     * reference CPU (1 = as fast, 4 = four times slower; default 1). The compiler's latency
     * estimate for the profile is the hub's one-thread time × this factor, scaled to `threads`.
     */
    speedFactor: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000 })),
    /** Largest accepted drop in cosine similarity against the float model. */
    accuracyBudget: Type.Optional(
      Type.Object(
        {
          minCosine: Type.Number({ minimum: 0, maximum: 1 }),
          maxTop1Disagreement: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    network: Type.Object(
      {
        metered: Type.Boolean(),
        kind: Type.Union([
          Type.Literal('ethernet'),
          Type.Literal('wifi'),
          Type.Literal('cellular'),
          Type.Literal('mixed'),
        ]),
      },
      { additionalProperties: false },
    ),
    maintenanceWindow: Type.Object(
      {
        /** Five-field cron expression for the window start. */
        cron: Type.String({ pattern: '^\\S+( \\S+){4}$' }),
        durationMinutes: Type.Integer({ minimum: 1, maximum: 1440 }),
        timezone: Type.String({ minLength: 1, maxLength: 64 }),
        /**
         * Device conditions (EF-2.1.2) a plain deployment also waits for [EF-8.16]: `unmetered`, `charging`, `idle`.
         * Absent: the window alone decides.
         */
        conditions: Type.Optional(
          Type.Array(Type.Union([Type.Literal('unmetered'), Type.Literal('charging'), Type.Literal('idle')]), {
            maxItems: 3,
            uniqueItems: true,
          }),
        ),
      },
      { additionalProperties: false },
    ),
    /** Device-health alert thresholds [EF-9.12]: a telemetry batch past one raises a health_alert event. */
    health: Type.Optional(
      Type.Object(
        {
          /** Agent resident memory above this many MiB. */
          maxRssMb: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          /** 1-minute load average above this (the agent reports loadavg; set it against the profile's cores). */
          maxCpuLoad: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          /** Free storage under this many MiB. */
          minFreeStorageMb: Type.Optional(Type.Number({ minimum: 0 })),
          /** Hottest thermal zone above this, in °C. */
          maxTemperatureC: Type.Optional(Type.Number()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)
export type FirmwareProfile = Static<typeof FirmwareProfile>

export const profileCodec = codec(FirmwareProfile, 64 * 1024)

/** Semantic checks the schema cannot express. Returns a list of problems (empty when valid). */
export function profileProblems(profile: FirmwareProfile): string[] {
  const out: string[] = []
  if (profile.opset.min > profile.opset.max) out.push('opset.min > opset.max')
  if (profile.threads !== undefined && profile.threads > profile.cores) out.push('threads > cores')
  if (!profile.executionProviders.includes('cpu')) out.push("executionProviders must include 'cpu' as the fallback")
  else if (profile.executionProviders[profile.executionProviders.length - 1] !== 'cpu')
    out.push("'cpu' must be the last execution provider (it is the last resort)")
  if (new Set(profile.executionProviders).size !== profile.executionProviders.length)
    out.push('executionProviders repeat')
  if (new Set(profile.precisions).size !== profile.precisions.length) out.push('precisions repeat')
  if (profile.storageBudgetMb > profile.ramMb * 64) out.push('storageBudgetMb implausibly large for this device')
  if (!isTimeZone(profile.maintenanceWindow.timezone))
    out.push(
      `maintenanceWindow.timezone ${JSON.stringify(profile.maintenanceWindow.timezone)} is not an IANA time zone`,
    )
  return out
}

/** True when the runtime's ICU knows the zone (schedulers would throw on it otherwise). */
function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}
