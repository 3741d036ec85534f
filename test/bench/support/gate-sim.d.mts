// Types for gate-sim.mjs (the health-gate benchmark's simulation).
export interface Behaviour {
  latency: number
  extraErrors: number
  conf: [number, number]
}
export interface RolloutOutcome {
  failed: { wave: number; requests: number; ms: number; gates: string[] } | null
  legacy: { wave: number; requests: number; ms: number } | null
}
export const SIMULATION: { windowMs: number; tickMs: number; soakMs: number; waves: number[] }
export function behaviour(broken: boolean, defects: ('latency' | 'errors' | 'outputs')[]): Behaviour
export function simulateRollout(
  seed: number,
  candidate: Behaviour,
  options: {
    /** The hub's gate judge (hub/src or hub/dist rollouts/gates). */
    judge: (...args: never[]) => unknown
    /** The hub's traffic assembly (rollouts/gate-traffic). */
    waveTrafficOf: (...args: never[]) => unknown
    gates: object
    devices?: number
    /** Hand the gates each device's rows summed per 2-minute block (default) rather than one part per row. */
    compact?: boolean
    /** Collects every tick's verdict as `wave:t:verdict:failed gates`. */
    trace?: string[]
  },
): RolloutOutcome
