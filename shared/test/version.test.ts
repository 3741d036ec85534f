import { describe, expect, it } from 'vitest'
import { compareVersions, isValidVersion } from '../src/index.js'

describe('isValidVersion', () => {
  it.each(['0', '1', '1.2', '1.2.0', '2.0.13', '1.2.3.4', '999999999'])('accepts %j', (v) =>
    expect(isValidVersion(v)).toBe(true),
  )
  it.each([
    '',
    'v1',
    '1.',
    '.1',
    '1..2',
    '1.2.3.4.5',
    '1.2-beta',
    '1.2.0+build',
    '-1',
    '1 ',
    '1e3',
    '1234567890',
    'latest',
  ])('rejects %j', (v) => expect(isValidVersion(v)).toBe(false))
})

describe('compareVersions [EF-4.6]', () => {
  it.each([
    ['1.2.0', '1.10.0', -1],
    ['1.10.0', '1.2.0', 1],
    ['2', '1.99.99', 1],
    ['1.0', '1', 0],
    ['1.0.0', '1', 0],
    ['1.0.1', '1', 1],
    ['0.9', '0.10', -1],
    ['1.02', '1.2', 0],
    ['3.4.5', '3.4.5', 0],
  ] as const)('compare(%j, %j) = %d', (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected)
    expect(compareVersions(b, a)).toBe(-expected || 0)
  })

  it('sorts numerically, not lexically', () => {
    expect(['1.10', '1.9', '1.2.1', '10', '2'].sort(compareVersions)).toEqual(['1.2.1', '1.9', '1.10', '2', '10'])
  })
})
