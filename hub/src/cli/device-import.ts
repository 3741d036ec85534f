// `edgefleet devices import FILE.csv`: bulk provisioning from a CSV file in one
// call to `POST /api/v1/devices:batch` [EF-1.3.5], so an import is all or
// nothing. The secrets come back once and are written to a 0600 CSV that the
// command refuses to overwrite (opened before the import, removed if it fails).
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { basename } from 'node:path'
import { EdgeFleetError } from '@edgefleet/shared'
import { command, UsageError } from './command.js'

interface ImportRow {
  id: string
  profile: string
  tags?: Record<string, string>
}

/** Splits one CSV line (RFC 4180 quoting: "a ""b""" → a "b"); the rows here never span lines. */
function csvFields(line: string): string[] {
  const out: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]
    if (quoted && ch === '"' && line[i + 1] === '"') {
      field += '"'
      i++
    } else if (quoted && ch === '"') quoted = false
    else if (quoted) field += ch
    else if (ch === '"' && field.trim() === '') quoted = true
    else if (ch === ',') {
      out.push(field)
      field = ''
    } else field += ch
  }
  out.push(field)
  return out.map((f) => f.trim())
}

const rowError = (row: number, detail: string) =>
  new EdgeFleetError('EF_ERR_IMPORT_ROW_INVALID', `row ${row}: EF_ERR_HTTP_BAD_REQUEST: ${detail}`)

/** `tags` cell: `k=v;k2=v2` (empty: no tags). */
function tagsCell(cell: string, row: number): Record<string, string> {
  const tags: Record<string, string> = {}
  for (const kv of cell.split(';').filter((x) => x.trim() !== '')) {
    const eq = kv.indexOf('=')
    if (eq <= 0) throw rowError(row, `tag "${kv}" is not k=v`)
    tags[kv.slice(0, eq).trim()] = kv.slice(eq + 1).trim()
  }
  return tags
}

/**
 * Rows of a CSV with a header naming `id`, `profile` and optionally `tags`.
 * Row numbers count data rows from 1 (the header is not a row), as the API's do.
 */
export function parseDevicesCsv(text: string): ImportRow[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop()
  const header = csvFields(lines[0] ?? '').map((h) => h.toLowerCase())
  const col = (name: string) => header.indexOf(name)
  if (col('id') < 0 || col('profile') < 0)
    throw new EdgeFleetError(
      'EF_ERR_IMPORT_ROW_INVALID',
      `header: needs columns id and profile (found: ${header.join(',')})`,
    )
  const unknown = header.filter((h) => !['id', 'profile', 'tags'].includes(h))
  if (unknown.length)
    throw new EdgeFleetError('EF_ERR_IMPORT_ROW_INVALID', `header: unknown columns ${unknown.join(', ')}`)
  return lines.slice(1).map((line, i) => {
    const cells = csvFields(line)
    if (cells.length !== header.length)
      throw rowError(i + 1, `${cells.length} fields where the header has ${header.length}`)
    const tags = col('tags') >= 0 ? tagsCell(cells[col('tags')], i + 1) : {}
    return { id: cells[col('id')], profile: cells[col('profile')], tags }
  })
}

interface Imported {
  imported: number
  hubPublicKey: string
  mqttUrl: string
  devices: { id: string; secret: string }[]
}

export const devicesImport = command({
  name: 'devices import',
  aliases: ['device import'],
  summary: ['devices import FILE.csv', 'provision many devices at once, all or none (admin)'],
  help: `edgefleet devices import FILE.csv [--out SECRETS.csv] [--json]
  FILE.csv    a header naming id, profile and optionally tags (k=v;k2=v2), then one device per row;
              a bad row refuses the whole import with its row number and code (EF_ERR_IMPORT_ROW_INVALID)
  --out FILE  where the secrets go (id,secret; mode 0600; never overwritten); default FILE-secrets.csv`,
  options: { out: { type: 'string' } },
  async run({ args, hub, emit }) {
    const file = args.pos[0]
    if (!file) throw new UsageError('devices import needs FILE.csv')
    const devices = parseDevicesCsv(readFileSync(file, 'utf8'))
    if (devices.length === 0) throw new UsageError(`${file} holds no device rows`)
    const outFile = args.str('out') ?? `${basename(file).replace(/\.csv$/i, '')}-secrets.csv`
    // Claimed before the import so that secrets shown once are never lost to an existing file.
    const fd = openSync(outFile, 'wx', 0o600)
    let imported: Imported
    try {
      imported = await hub.request<Imported>('POST', '/api/v1/devices:batch', { devices })
    } catch (err) {
      closeSync(fd)
      unlinkSync(outFile)
      throw err
    }
    writeSync(fd, ['id,secret', ...imported.devices.map((d) => `${d.id},${d.secret}`), ''].join('\n'))
    closeSync(fd)
    const summary = {
      imported: imported.imported,
      secrets: outFile,
      hubPublicKey: imported.hubPublicKey,
      mqttUrl: imported.mqttUrl,
    }
    emit(summary, () =>
      [
        `${imported.imported} devices provisioned; their secrets are in ${outFile} (shown once, mode 0600)`,
        `  hub public key: ${imported.hubPublicKey}`,
        `  broker:         ${imported.mqttUrl}`,
      ].join('\n'),
    )
    return 0
  },
})
