import { describe, expect, it } from 'vitest'
import {
  AGENT_PUBLISH_KINDS,
  DEVICE_TOPIC_KINDS,
  TOPIC_PREFIX,
  isDigest,
  isValidId,
  parseTopic,
  topics,
} from '../src/index.js'

const DIGEST = 'ab'.repeat(32)

describe('isValidId [EF-1.2]', () => {
  it.each(['a', 'rpi-0001', 'A.b_c-9', '0', 'x'.repeat(64)])('accepts %j', (id) => expect(isValidId(id)).toBe(true))
  it.each(['', '-lead', '.hidden', '_x', 'x'.repeat(65), 'a/b', 'a+b', '+', '#', 'a b', 'ü', 'a\n', '..'])(
    'rejects %j',
    (id) => expect(isValidId(id)).toBe(false),
  )
})

describe('isDigest', () => {
  it('accepts 64 lowercase hex characters only', () => {
    expect(isDigest(DIGEST)).toBe(true)
    expect(isDigest(DIGEST.toUpperCase())).toBe(false)
    expect(isDigest(DIGEST.slice(1))).toBe(false)
    expect(isDigest(DIGEST + '0')).toBe(false)
    expect(isDigest('g'.repeat(64))).toBe(false)
  })
})

describe('topic builders', () => {
  it('build every device topic under ef/v1/dev/{id}/', () => {
    expect(TOPIC_PREFIX).toBe('ef/v1')
    expect(topics.state('dev-1')).toBe('ef/v1/dev/dev-1/state')
    expect(topics.cmd('dev-1')).toBe('ef/v1/dev/dev-1/cmd')
    expect(topics.events('dev-1')).toBe('ef/v1/dev/dev-1/events')
    expect(topics.telemetry('dev-1')).toBe('ef/v1/dev/dev-1/telemetry')
    expect(topics.samples('dev-1')).toBe('ef/v1/dev/dev-1/samples')
    expect(topics.fetch('dev-1')).toBe('ef/v1/dev/dev-1/fetch')
    for (const kind of DEVICE_TOPIC_KINDS) expect(topics.device('d', kind)).toBe(`ef/v1/dev/d/${kind}`)
  })

  it('build chunk topics and the per-artifact filter [EF-1.4]', () => {
    expect(topics.chunk(DIGEST, 0)).toBe(`ef/v1/art/${DIGEST}/0`)
    expect(topics.chunk(DIGEST, 12)).toBe(`ef/v1/art/${DIGEST}/12`)
    expect(topics.artifact(DIGEST)).toBe(`ef/v1/art/${DIGEST}/+`)
  })

  it('hub subscribes to exactly what agents publish, never to cmd [EF-1.3]', () => {
    const subs = topics.hubSubscriptions()
    expect(subs).toEqual(AGENT_PUBLISH_KINDS.map((k) => `ef/v1/dev/+/${k}`))
    expect(AGENT_PUBLISH_KINDS).not.toContain('cmd')
    expect([...AGENT_PUBLISH_KINDS, 'cmd'].sort()).toEqual([...DEVICE_TOPIC_KINDS].sort())
  })

  it.each(['+', '#', 'a/b', 'a/+/b', '', '-x', 'x'.repeat(65)])(
    'refuse device id %j (wildcards, levels, bad shape)',
    (id) => {
      expect(() => topics.state(id)).toThrow(TypeError)
      expect(() => topics.cmd(id)).toThrow(TypeError)
    },
  )

  it('refuse an unknown device topic kind', () => {
    expect(() => topics.device('d', 'admin' as never)).toThrow(TypeError)
  })

  it('refuse bad digests and chunk indexes', () => {
    expect(() => topics.chunk('+', 0)).toThrow(TypeError)
    expect(() => topics.chunk(DIGEST.toUpperCase(), 0)).toThrow(TypeError)
    expect(() => topics.artifact('#')).toThrow(TypeError)
    expect(() => topics.chunk(DIGEST, -1)).toThrow(RangeError)
    expect(() => topics.chunk(DIGEST, 1.5)).toThrow(RangeError)
    expect(() => topics.chunk(DIGEST, Number.NaN)).toThrow(RangeError)
  })
})

describe('parseTopic', () => {
  it('round-trips every built topic', () => {
    for (const kind of DEVICE_TOPIC_KINDS)
      expect(parseTopic(topics.device('gw.7_b-1', kind))).toEqual({ kind, deviceId: 'gw.7_b-1' })
    for (const n of [0, 1, 9, 10, 255, 100_000])
      expect(parseTopic(topics.chunk(DIGEST, n))).toEqual({ kind: 'chunk', digest: DIGEST, index: n })
  })

  it.each([
    ['wildcard device id +', 'ef/v1/dev/+/state'],
    ['wildcard #', 'ef/v1/dev/#'],
    ['wildcard kind', 'ef/v1/dev/d/+'],
    ['wildcard chunk index', `ef/v1/art/${DIGEST}/+`],
    ['bad device id', 'ef/v1/dev/-bad/state'],
    ['too long device id', `ef/v1/dev/${'x'.repeat(65)}/state`],
    ['empty device id', 'ef/v1/dev//state'],
    ['unknown kind', 'ef/v1/dev/d/admin'],
    ['extra level', 'ef/v1/dev/d/state/x'],
    ['missing level', 'ef/v1/dev/d'],
    ['other version', 'ef/v2/dev/d/state'],
    ['other prefix', 'xx/v1/dev/d/state'],
    ['leading slash', '/ef/v1/dev/d/state'],
    ['short digest', `ef/v1/art/${DIGEST.slice(2)}/0`],
    ['uppercase digest', `ef/v1/art/${DIGEST.toUpperCase()}/0`],
    ['non-canonical index 01', `ef/v1/art/${DIGEST}/01`],
    ['non-canonical index 1e2', `ef/v1/art/${DIGEST}/1e2`],
    ['non-canonical index +1', `ef/v1/art/${DIGEST}/+1`],
    ['index with spaces', `ef/v1/art/${DIGEST}/ 1`],
    ['hex index', `ef/v1/art/${DIGEST}/0x1`],
    ['negative index', `ef/v1/art/${DIGEST}/-1`],
    ['negative zero', `ef/v1/art/${DIGEST}/-0`],
    ['fractional index', `ef/v1/art/${DIGEST}/1.0`],
    ['empty index', `ef/v1/art/${DIGEST}/`],
    ['index beyond safe integers', `ef/v1/art/${DIGEST}/9007199254740993`],
    ['empty topic', ''],
  ])('rejects %s', (_label, topic) => {
    expect(parseTopic(topic)).toBeNull()
  })
})
