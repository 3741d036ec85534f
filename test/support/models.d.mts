export function matmulModel(sizeBytes: number, seed?: number): Promise<Uint8Array>
