// Types for capture-models.mjs.
export const IMAGE_DIMS: number[]
export function imageModel(seed?: number): Promise<Uint8Array>
export function camRequest(userId?: number[]): {
  inputs: Record<string, { type: 'float32'; dims: number[]; data: number[] }>
}
