// Types for chaos.mjs.
export interface ChaosStats {
  seed: number
  minutes: number
  iterations: number
  faults: Record<string, number>
  violations: string[]
  inferErrors: string[]
  telemetry: { device: string; stored: number; answered: number; answeredInCleanLives: number; lives: number }[]
  elapsedMs: number
}
export function runChaos(o: { minutes: number; seed?: number; log?: (line: string) => void }): Promise<ChaosStats>
