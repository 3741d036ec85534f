export function retrainHead(
  model: Uint8Array,
  opts: { seed: number; nodes?: number; scale?: number },
): Promise<{ bytes: Uint8Array; changedBytes: number; tensors: number }>
export function changedTensorBytes(prev: Uint8Array, next: Uint8Array): Promise<number>
