// The broker ACL truth tables [EF-1.3].
import { describe, expect, it } from 'vitest'
import { devicemayPublish, deviceMaySubscribe } from '../../src/broker/acl.js'

const DEVICE = 'a'.repeat(64)

describe('devicemayPublish [EF-1.3]', () => {
  it.each(['state', 'events', 'telemetry', 'samples', 'fetch'])('allows its own %s topic', (kind) => {
    expect(devicemayPublish('dev-1', `ef/v1/dev/dev-1/${kind}`)).toBe(true)
  })

  it.each([
    ['its own cmd topic (hub only)', 'ef/v1/dev/dev-1/cmd'],
    ['another device state', 'ef/v1/dev/dev-2/state'],
    ['another device telemetry', 'ef/v1/dev/dev-2/telemetry'],
    ['a prefix-sharing device', 'ef/v1/dev/dev-10/state'],
    ['an artifact chunk', `ef/v1/art/${DEVICE}/0`],
    ['its own repair topic (hub only)', `ef/v1/dev/dev-1/chunk/${DEVICE}/0`],
    ['a single-level wildcard', 'ef/v1/dev/+/state'],
    ['a multi-level wildcard', 'ef/v1/dev/dev-1/#'],
    ['an unknown kind', 'ef/v1/dev/dev-1/logs'],
    ['an extra level', 'ef/v1/dev/dev-1/state/x'],
    ['another protocol version', 'ef/v2/dev/dev-1/state'],
    ['a foreign topic', 'foo/bar'],
    ['an empty topic', ''],
    ['a system topic', '$SYS/broker/clients'],
  ])('refuses %s', (_what, topic) => {
    expect(devicemayPublish('dev-1', topic)).toBe(false)
  })
})

describe('deviceMaySubscribe [EF-1.3]', () => {
  it.each([
    ['its own cmd topic', 'ef/v1/dev/dev-1/cmd'],
    ['one artifact, all chunks', `ef/v1/art/${DEVICE}/+`],
    ['one artifact, chunk 0', `ef/v1/art/${DEVICE}/0`],
    ['one artifact, chunk 17', `ef/v1/art/${DEVICE}/17`],
    ['its own repair chunks [EF-1.6]', 'ef/v1/dev/dev-1/chunk/#'],
  ])('allows %s', (_what, filter) => {
    expect(deviceMaySubscribe('dev-1', filter)).toBe(true)
  })

  it.each([
    ["another device's cmd", 'ef/v1/dev/dev-2/cmd'],
    ['every cmd topic', 'ef/v1/dev/+/cmd'],
    ["another device's repair chunks", 'ef/v1/dev/dev-2/chunk/#'],
    ['every repair topic', 'ef/v1/dev/+/chunk/#'],
    ["its own state (the hub's to read)", 'ef/v1/dev/dev-1/state'],
    ['its own telemetry', 'ef/v1/dev/dev-1/telemetry'],
    ['everything under its device', 'ef/v1/dev/dev-1/#'],
    ['every artifact', 'ef/v1/art/#'],
    ['every artifact by +', 'ef/v1/art/+/+'],
    ['an artifact subtree', `ef/v1/art/${DEVICE}/#`],
    ['an uppercase digest', `ef/v1/art/${DEVICE.toUpperCase()}/+`],
    ['a short digest', `ef/v1/art/${'a'.repeat(63)}/+`],
    ['a chunk index with a leading zero', `ef/v1/art/${DEVICE}/01`],
    ['a negative chunk index', `ef/v1/art/${DEVICE}/-1`],
    ['an extra level', `ef/v1/art/${DEVICE}/0/x`],
    ['everything', '#'],
    ['another protocol version', `ef/v2/art/${DEVICE}/+`],
  ])('refuses %s', (_what, filter) => {
    expect(deviceMaySubscribe('dev-1', filter)).toBe(false)
  })
})
