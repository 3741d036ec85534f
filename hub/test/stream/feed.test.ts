// The retraining feed on NATS JetStream [EF-9.13]: EF_FEED carries the NDJSON
// feed's records byte for byte, with their cursors, once each across a hub
// restart; the Python example (docs/examples/jetstream_feed.py, nats-py) reads
// it from a stream sequence (skipped only without a Python with nats-py).
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { topics } from '@edgefleet/shared'
import type { StoredMsg } from 'nats'
import type { Hub } from '../../src/hub.js'
import { STREAM_NAMES, SUBJECTS } from '../../src/stream/index.js'
import { CURSOR_HEADER } from '../../src/stream/feed.js'
import { provision } from '../fixtures/hub.js'
import { DEVICE, PY_WITH_NATS, sample, streamSuite, waitForAsync } from '../fixtures/stream.js'

const suite = streamSuite()
const ndjson = async (streamHub: Hub) =>
  (await streamHub.api.inject({ method: 'GET', url: '/api/v1/feed?since=0' })).body.split('\n').filter(Boolean)
const cursorOf = (line: string) => (JSON.parse(line) as { cursor: number }).cursor

/** The hub's feed records once EF_FEED holds as many: each stream message beside its NDJSON line. */
async function bothSides(streamHub: Hub, count: number): Promise<{ lines: string[]; messages: StoredMsg[] }> {
  await waitForAsync(async () => (await ndjson(streamHub)).length === count, 10_000, `${count} feed records`)
  await waitForAsync(
    async () => (await suite.jsm.streams.info(STREAM_NAMES.feed)).state.messages >= count,
    10_000,
    `${count} records in EF_FEED`,
  )
  const info = await suite.jsm.streams.info(STREAM_NAMES.feed)
  const messages: StoredMsg[] = []
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++)
    messages.push(await suite.jsm.streams.getMessage(STREAM_NAMES.feed, { seq }))
  return { lines: await ndjson(streamHub), messages }
}

async function sendSamples(streamHub: Hub, secret: string, indexes: number[]): Promise<void> {
  const client = await suite.deviceOn(streamHub, secret)
  for (const i of indexes)
    await client.publishAsync(topics.device(DEVICE, 'samples'), JSON.stringify(sample(i)), { qos: 1 })
}

describe('the retraining feed on JetStream [EF-9.13]', () => {
  it('EF_FEED holds the NDJSON feed records byte for byte, with their cursors, each once across a hub restart', async () => {
    const dir = suite.newDir()
    suite.hub = await suite.openHub(dir)
    const secret = await provision(suite.hub, DEVICE)
    await sendSamples(suite.hub, secret, [0, 1, 2, 3])
    const first = await bothSides(suite.hub, 4)
    expect(first.messages.map((m) => m.string())).toEqual(first.lines)
    expect(first.messages.map((m) => m.header.get(CURSOR_HEADER))).toEqual(first.lines.map((l) => String(cursorOf(l))))
    expect(first.messages.map((m) => m.subject)).toEqual(first.lines.map(() => `${SUBJECTS.feed}.wake`))

    // A restarted hub publishes what the stream does not hold yet, and nothing twice.
    await suite.hub.close()
    suite.hub = await suite.openHub(dir)
    await sendSamples(suite.hub, secret, [4, 5])
    const after = await bothSides(suite.hub, 6)
    expect(after.messages.map((m) => m.string())).toEqual(after.lines)
  }, 30_000)

  it.skipIf(!PY_WITH_NATS)(
    'the nats-py example reads the same records from a stream sequence',
    async () => {
      suite.hub = await suite.openHub(suite.newDir())
      const secret = await provision(suite.hub, DEVICE)
      await sendSamples(suite.hub, secret, [0, 1, 2])
      const { lines } = await bothSides(suite.hub, 3)
      const { user, pass } = suite.cluster.streamCredentials ?? { user: '', pass: '' }
      const args = ['--servers', suite.cluster.clientUrls.join(','), '--user', user, '--password', pass]
      const script = join(process.cwd(), 'docs/examples/jetstream_feed.py')
      const { stdout } = await promisify(execFile)(
        PY_WITH_NATS ?? 'python3',
        [script, ...args, '--start-seq', '2', '--model', 'wake', '--idle', '1'],
        { timeout: 20_000 },
      )
      expect(stdout.split('\n').filter(Boolean)).toEqual(lines.slice(1))
    },
    30_000,
  )
})
