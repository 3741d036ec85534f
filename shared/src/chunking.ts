// Content addressing of artifacts [EF-4]: an artifact is the sha256 of its bytes
// plus an ordered list of chunks, each addressed by its own sha256, so a device
// that already holds a chunk never needs it again.
import { sha256Hex } from './crypto.js'

/** 256 KiB: the knee of the aedes/Mosquitto fan-out curve on this hardware (docs/BENCHMARKS.md). */
export const DEFAULT_CHUNK_SIZE = 256 * 1024

export interface ChunkRef {
  /** sha256 hex of the chunk's bytes. */
  digest: string
  /** length in bytes. */
  size: number
}

export interface ChunkedArtifact {
  digest: string
  size: number
  chunks: ChunkRef[]
}

/** Cut points of fixed-size chunking; other strategies return their own boundaries. */
export function fixedBoundaries(size: number, chunkSize = DEFAULT_CHUNK_SIZE): number[] {
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new RangeError('chunkSize must be a positive integer')
  const cuts: number[] = []
  for (let off = chunkSize; off < size; off += chunkSize) cuts.push(off)
  return cuts
}

/** Splits `data` at `cuts` (ascending offsets) and addresses every piece. */
export function chunkArtifact(data: Uint8Array, cuts: number[] = fixedBoundaries(data.length)): ChunkedArtifact {
  const chunks: ChunkRef[] = []
  // An empty artifact is one empty chunk (manifests require at least one); the
  // boundary loop below would reject its single zero-length piece.
  if (data.length === 0) {
    if (cuts.length > 0) throw new RangeError(`bad chunk boundary ${cuts[0]}`)
    chunks.push({ digest: sha256Hex(data), size: 0 })
    return { digest: sha256Hex(data), size: 0, chunks }
  }
  let start = 0
  for (const end of [...cuts, data.length]) {
    if (end <= start || end > data.length) throw new RangeError(`bad chunk boundary ${end}`)
    chunks.push({ digest: sha256Hex(data.subarray(start, end)), size: end - start })
    start = end
  }
  return { digest: sha256Hex(data), size: data.length, chunks }
}

/** Byte offset of every chunk, derived from the sizes. */
export function chunkOffsets(chunks: readonly ChunkRef[]): number[] {
  const out: number[] = []
  let off = 0
  for (const c of chunks) {
    out.push(off)
    off += c.size
  }
  return out
}
