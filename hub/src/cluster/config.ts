// Checks of the election's settings, light enough for the CLI to import before the hub loads.
import { EdgeFleetError } from '@edgefleet/shared'

/** The election's database URL: postgres:// or postgresql:// only [EF-12.1]; throws EF_ERR_CONFIG_INVALID otherwise. */
export function checkClusterUrl(url: string): string {
  let protocol: string | undefined
  try {
    protocol = new URL(url).protocol
  } catch {
    protocol = undefined
  }
  if (protocol !== 'postgresql:' && protocol !== 'postgres:')
    throw new EdgeFleetError(
      'EF_ERR_CONFIG_INVALID',
      `--cluster ${url.replace(/\/\/[^@/]*@/, '//…@')}: give a PostgreSQL URL, e.g. postgresql://user@db.example.com:5432/edgefleet`,
    )
  return url
}

/** A replica id fits PostgreSQL's application_name and log lines: 1-64 printable ASCII characters. */
export function checkReplicaId(id: string): string {
  if (!/^[\x21-\x7e]{1,64}$/.test(id))
    throw new EdgeFleetError(
      'EF_ERR_CONFIG_INVALID',
      `--replica-id ${JSON.stringify(id)}: 1-64 printable ASCII characters, no spaces`,
    )
  return id
}
