export interface SimModel {
  name: string
  version: string
  latencyMs: number
}
export interface SimSpec {
  id: string
  profile: string
  models: SimModel[]
  seed: number
}
export type SimDeviceSpec = SimSpec & { secret: string }
/** Summed counters of every worker (see worker.mjs for their meaning). */
export type SimTotals = Record<string, number>
export interface Simulator {
  totals(): SimTotals
  until(pred: (t: SimTotals) => boolean, timeoutMs: number, what?: string): Promise<SimTotals>
  rawSubscribe(filter: string): void
  drop(): void
  stop(): Promise<void>
}
export function deviceSpec(prefix: string, i: number, profiles?: string[]): SimSpec
export function provisionFleet(
  hubUrl: string,
  specs: SimSpec[],
  headers?: Record<string, string>,
): Promise<SimDeviceSpec[]>
export function startSimulator(o: {
  devices: SimDeviceSpec[]
  mqttUrl: string
  procs?: number
  rate?: number
  rampPerSec?: number
  execArgv?: string[]
}): Simulator
