export function batchModel(o?: { strictBatch?: boolean; seed?: number }): Promise<Uint8Array>
export function batchInput(
  batch: number,
  seed?: number,
): { inputs: { x: { type: 'float32'; dims: number[]; data: number[] } } }
