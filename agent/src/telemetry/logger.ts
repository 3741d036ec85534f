// A tiny JSON-lines logger for the agent (pino's API subset the agent uses).
// pino alone costs ~8 MiB of RSS on import; a device agent logs little, to
// stderr, so one synchronous write per line is plenty.
import type { Logger } from 'pino'

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const
type Level = keyof typeof LEVELS

export interface TinyLogger {
  level: string
  trace(obj: unknown, msg?: string): void
  debug(obj: unknown, msg?: string): void
  info(obj: unknown, msg?: string): void
  warn(obj: unknown, msg?: string): void
  error(obj: unknown, msg?: string): void
  fatal(obj: unknown, msg?: string): void
  child(bindings: Record<string, unknown>): TinyLogger
}

export function createLogger(
  level: string,
  base: Record<string, unknown> = {},
  write: (line: string) => void = (l) => process.stderr.write(l),
): TinyLogger {
  const min = LEVELS[(level in LEVELS ? level : 'info') as Level]
  const make = (bindings: Record<string, unknown>): TinyLogger => {
    const at =
      (name: Exclude<Level, 'silent'>) =>
      (obj: unknown, msg?: string): void => {
        if (LEVELS[name] < min) return
        const fields =
          typeof obj === 'string'
            ? { msg: obj }
            : { ...(obj as Record<string, unknown>), ...(msg !== undefined ? { msg } : {}) }
        try {
          write(
            JSON.stringify({ level: LEVELS[name], time: Date.now(), pid: process.pid, ...bindings, ...fields }) + '\n',
          )
        } catch {
          /* a log line must never break the agent */
        }
      }
    return {
      level,
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      fatal: at('fatal'),
      child: (b) => make({ ...bindings, ...b }),
    }
  }
  return make(base)
}

/** Modules typed against pino's Logger use only the methods above. */
export function asPino(l: TinyLogger): Logger {
  return l as unknown as Logger
}
