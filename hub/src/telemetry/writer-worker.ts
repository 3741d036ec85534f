// The telemetry writer thread [EF-9.1]: its own connection to the hub's
// database, one transaction per flush it is sent, replies in order.
import { parentPort, workerData } from 'node:worker_threads'
import { codeOf } from '@edgefleet/shared'
import { openDatabase } from '../store/index.js'
import { TelemetryStore } from '../store/telemetry.js'
import { decodeSamples, unpackSamples, type WriteRequest, type WriterData } from './writer.js'

const data = workerData as WriterData
const db = openDatabase(data.dbPath)
// A size cap makes SQLite refuse growth past it with SQLITE_FULL, as a full disk would.
if (data.maxDbBytes > 0) db.capSize(data.maxDbBytes)
const store = new TelemetryStore(db)
if (!parentPort) throw new Error('this module runs as a worker thread (new Worker), not on its own')
const port = parentPort

port.on('message', (message: WriteRequest | { id: 0; close: true }) => {
  if ('close' in message) {
    db.close()
    port.close()
    return
  }
  try {
    const samples = decodeSamples(unpackSamples(message.samples, message.sampleLens))
    port.postMessage({
      id: message.id,
      result: store.writePrepared({ batches: message.batches, rollups: message.rollups, samples }, message.now),
    })
  } catch (err) {
    const sqlite = (err as { code?: unknown }).code
    port.postMessage({
      id: message.id,
      error: {
        message: (err as Error).message,
        code: typeof sqlite === 'string' && sqlite.startsWith('SQLITE') ? sqlite : codeOf(err),
      },
    })
  }
})
