// ORT offline graph optimization: let onnxruntime-node optimize the graph and
// write the result (optimizedModelFilePath), so devices load a pre-optimized
// model. Level policy (see levelFor): never 'all' offline — its NCHWc layouts
// depend on the hub CPU's vector width, which a device may not share.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FirmwareProfile } from '@edgefleet/shared'
import { openSession } from './ort.js'

export type OfflineLevel = 'disabled' | 'basic' | 'extended'

/**
 * 'extended' adds com.microsoft fused ops (FusedConv, Gelu, ...), which only
 * ORT's CPU (and CUDA) providers run: allowed when the profile runs on CPU alone.
 * Otherwise 'basic' (constant folding, Conv+BN, redundant nodes), which stays standard ONNX.
 */
export function levelFor(profile: FirmwareProfile): OfflineLevel {
  return profile.executionProviders.every((ep) => ep === 'cpu') ? 'extended' : 'basic'
}

export async function ortOptimize(model: Uint8Array, level: OfflineLevel): Promise<Uint8Array> {
  if (level === 'disabled') return model
  const dir = await mkdtemp(join(tmpdir(), 'ef-opt-'))
  try {
    const file = join(dir, 'optimized.onnx')
    const s = await openSession(model, { threads: 1, graphOptimizationLevel: level, optimizedModelFilePath: file })
    await s.release()
    return new Uint8Array(await readFile(file))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
