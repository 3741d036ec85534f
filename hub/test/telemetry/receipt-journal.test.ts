// The receipt journal [EF-9.1.1] on a real folder: a segment with anything not
// committed comes back whole at the next open, a fully committed segment is
// emptied or deleted, and a line cut short is skipped.
import { appendFileSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ReceiptJournal } from '../../src/telemetry/receipt-journal.js'
import { tempDir } from '../fixtures/hub.js'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

function journalDir(): string {
  const { dir, cleanup } = tempDir('ef-journal-')
  cleanups.push(cleanup)
  return join(dir, 'journal')
}

const topic = (i: number) => `ef/v1/dev/d${i}/telemetry`
const bytesIn = (dir: string) => readdirSync(dir).reduce((sum, name) => sum + readFileSync(join(dir, name)).length, 0)

describe('receipt journal', () => {
  it('gives back at the next open every message of a segment not fully committed', () => {
    const dir = journalDir()
    const first = ReceiptJournal.open(dir)
    expect(first.leftover).toEqual([])
    const receipts = [0, 1, 2].map((i) => first.journal.append(topic(i), Buffer.from([i, 255, 0])))
    first.journal.committed(receipts[1])
    first.journal.close() // as a kill -9 would leave it: nothing else written

    // Lines are not removed one by one: the committed one comes back too, and ingest, idempotent by batch
    // and sample id, counts it nowhere again.
    const second = ReceiptJournal.open(dir)
    expect(second.leftover).toEqual([0, 1, 2].map((i) => ({ topic: topic(i), payload: Buffer.from([i, 255, 0]) })))
    expect(second.journal.stats.replayed).toBe(3)
    // Replayed and committed: the old segment goes, the new one is untouched.
    second.journal.forgetReplayed()
    second.journal.close()
    expect(ReceiptJournal.open(dir).leftover).toEqual([])
  })

  it('empties the open segment whenever everything in it committed, and deletes full segments once committed', () => {
    const dir = journalDir()
    const { journal } = ReceiptJournal.open(dir, 200)
    const early = journal.append(topic(1), Buffer.alloc(100))
    journal.committed(early)
    expect(bytesIn(dir)).toBe(0)
    // Past 200 bytes the journal starts a new segment; the old one stays until its messages commit.
    const held = journal.append(topic(2), Buffer.alloc(300))
    const next = journal.append(topic(3), Buffer.alloc(10))
    expect(readdirSync(dir)).toHaveLength(2)
    journal.committed(held)
    expect(readdirSync(dir)).toHaveLength(1)
    journal.committed(next)
    expect(bytesIn(dir)).toBe(0)
    expect(journal.stats).toMatchObject({ appended: 3, committed: 3 })
    journal.close()
  })

  it('skips a line cut short by a crash and counts it', () => {
    const dir = journalDir()
    const { journal } = ReceiptJournal.open(dir)
    journal.append(topic(1), Buffer.from('ok'))
    journal.close()
    const [segment] = readdirSync(dir)
    appendFileSync(join(dir, segment), '{"t":"ef/v1/dev/d2/telemetry","p":"AAE')
    const reopened = ReceiptJournal.open(dir)
    expect(reopened.leftover.map((r) => r.payload.toString())).toEqual(['ok'])
    expect(reopened.journal.stats.unreadable).toBe(1)
    reopened.journal.close()
  })
})
