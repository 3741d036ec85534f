// How the console prints numbers, sizes and times: one place, so every view
// shows a missing value the same way ("–") and sizes in the same units.
const DASH = '–'

/** A number with `digits` decimals (none from 100 up); "–" for null/undefined. */
export function fmt(value: unknown, digits = 2): string {
  if (value === null || value === undefined) return DASH
  if (typeof value !== 'number') return typeof value === 'string' ? value : JSON.stringify(value)
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(digits)
}

export const pct = (value: number | null | undefined): string =>
  value === null || value === undefined ? DASH : `${(value * 100).toFixed(1)}%`

const MiB = 1_048_576
export function size(bytes: number): string {
  return bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`
}
export const mib = (bytes: number | undefined): string =>
  bytes === undefined ? DASH : `${(bytes / MiB).toFixed(0)} MiB`

/** A time of day for today, date and time otherwise; "never" for null. */
export function when(ts: number | null | undefined): string {
  if (ts === null || ts === undefined || !Number.isFinite(ts)) return 'never'
  const date = new Date(ts)
  return date.toDateString() === new Date().toDateString() ? date.toLocaleTimeString() : date.toLocaleString()
}

export const sum = (values: Iterable<number>): number => {
  let total = 0
  for (const v of values) total += v
  return total
}

export const pairs = (record: Record<string, number | string>): string =>
  Object.entries(record)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ')
