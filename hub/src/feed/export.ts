// Dataset export [EF-9.9]: reads a model's feed over the HTTP API, page by
// page, and writes a tar with index.jsonl and each sample's tensors as .npy.
// Memory holds one page of records and one sample at a time; the index is
// spooled to a temporary file and appended last.
import { mkdtempSync, openSync, writeSync, closeSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { npyOfTensor, type Sample, type TensorValue } from '@edgefleet/shared'
import { TarWriter } from './tar.js'

export interface ExportSource {
  /** GET the path; returns the body as text (throws EdgeFleetError on an error answer). */
  text(path: string): Promise<string>
}

export interface ExportResult {
  records: number
  samples: number
  tensors: number
  /** Highest cursor exported (the next export's --since), or the given since when nothing was new. */
  last: number
  bytes: number
}

/** A tensor name as a safe archive path component (names like `onnx::Flatten_0` stay readable). */
const safeName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || '_'

export async function exportDataset(
  src: ExportSource,
  opts: { model: string; since?: number; out: string; pageSize?: number },
): Promise<ExportResult> {
  const pageSize = opts.pageSize ?? 1000
  const spool = mkdtempSync(join(tmpdir(), 'ef-export-'))
  const indexPath = join(spool, 'index.jsonl')
  let index = openSync(indexPath, 'w')
  const tar = new TarWriter(opts.out)
  const res: ExportResult = { records: 0, samples: 0, tensors: 0, last: opts.since ?? 0, bytes: 0 }
  try {
    for (;;) {
      const q = new URLSearchParams({ model: opts.model, limit: String(pageSize) })
      if (res.last > 0 || opts.since !== undefined) q.set('since', String(res.last))
      const body = await src.text(`/api/v1/feed?${q}`)
      const lines = body.split('\n').filter((l) => l.length > 0)
      for (const line of lines) {
        const rec = JSON.parse(line) as { cursor: number; kind: string; url?: string }
        if (rec.kind === 'sample' && rec.url) {
          const sample = JSON.parse(await src.text(rec.url)) as Sample
          const files: Record<string, Record<string, string>> = {}
          const groups: [string, Record<string, TensorValue> | undefined][] = [
            ['inputs', sample.inputs],
            ['outputs', sample.outputs],
            ['shadow', sample.shadow?.outputs],
          ]
          for (const [group, tensors] of groups) {
            if (!tensors) continue
            for (const [name, t] of Object.entries(tensors)) {
              const path = `samples/${rec.cursor}/${group}/${safeName(name)}.npy`
              await tar.add(path, npyOfTensor(name, t))
              ;(files[group] ??= {})[name] = path
              res.tensors++
            }
          }
          writeSync(index, JSON.stringify({ ...rec, files }) + '\n')
          res.samples++
        } else {
          writeSync(index, line + '\n')
        }
        res.records++
        res.last = rec.cursor
      }
      if (lines.length < pageSize) break
    }
    closeSync(index)
    index = -1
    await tar.addFile('index.jsonl', indexPath)
    await tar.close()
    res.bytes = tar.bytes
    return res
  } finally {
    if (index >= 0) closeSync(index)
    await tar.close()
    rmSync(spool, { recursive: true, force: true })
  }
}
