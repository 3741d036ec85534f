// `hub start --stream nats://…` composed [EF-9.13]: the JetStream connection,
// the publisher the MQTT handlers hand telemetry and samples to, the durable
// consumer that writes them to the database, and the feed publisher. hub.ts
// starts it after the services and stops it in two steps around the writer.
import type { Logger } from 'pino'
import type { HubStore } from '../store/index.js'
import type { Retraining } from '../telemetry/index.js'
import { openStream, type HubStream, type StreamOptions } from './connection.js'
import { StreamIngest } from './ingest.js'
import { StreamConsumer } from './consumer.js'
import { StreamFeed } from './feed.js'

export { STREAM_NAMES, SUBJECTS, subjectToken, parseStreamUrl, type StreamOptions } from './connection.js'

export interface Streaming {
  readonly stream: HubStream
  /** What the MQTT handlers push to (ctx.ingest). */
  readonly ingest: StreamIngest
  readonly consumer: StreamConsumer
  readonly feed: StreamFeed
  /** Stops pulling (what was pulled and queued is committed and acked by the writer's close). */
  stopConsuming(): Promise<void>
  /** Stops the feed publisher and closes the connection (after the writer committed). */
  close(): Promise<void>
}

export async function startStreaming(
  url: string,
  deps: { store: HubStore; retraining: Retraining; log: Logger; now: () => number },
  options: Partial<StreamOptions> = {},
): Promise<Streaming> {
  const log = deps.log.child({ svc: 'stream' })
  const stream = await openStream(url, log, options)
  const ingest = new StreamIngest({ stream, log })
  const consumer = new StreamConsumer({ stream, ingest: deps.retraining.ingest, store: deps.store, now: deps.now, log })
  const feed = new StreamFeed({ stream, store: deps.store, log })
  try {
    await consumer.start()
    await feed.start()
  } catch (err) {
    await consumer.close()
    await stream.close()
    throw err
  }
  const onCommitted = () => feed.wake()
  deps.retraining.live.on('committed', onCommitted)
  return {
    stream,
    ingest,
    consumer,
    feed,
    stopConsuming: () => consumer.close(),
    async close() {
      deps.retraining.live.off('committed', onCommitted)
      await feed.close()
      await stream.close()
    },
  }
}
