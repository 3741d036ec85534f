import type { Parameters } from 'fast-check'
export function fuzzParams<T>(name: string, runs: number, extra?: Parameters<T>): Parameters<T>
export function withinMs<T>(ms: number, what: string, fn: () => T): T
export function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T>
import type { Arbitrary } from 'fast-check'
export class Raw {
  constructor(text: string)
  readonly text: string
}
export const hostileNumber: Arbitrary<number | Raw>
export const hostileString: Arbitrary<string>
export const hostileValue: Arbitrary<unknown>
export function jsonText(v: unknown): string
export const junkPayload: Arbitrary<Buffer>
export function mutatedBytes(base: Uint8Array, opts?: { maxMutations?: number; within?: number }): Arbitrary<Buffer>
export function mutate(msg: unknown, pick: number, value: unknown): unknown
