// Deployment targets: profile=P | tag=k=v | device=ID [EF-5.4].
import { describe, expect, it } from 'vitest'
import { EdgeFleetError } from '@edgefleet/shared'
import { parseTarget } from '../../src/distribution/target.js'

describe('parseTarget', () => {
  it.each([
    ['profile=gateway-rpi4', { profile: 'gateway-rpi4' }],
    ['device=dev-1', { device: 'dev-1' }],
    ['device=a.b_c-9', { device: 'a.b_c-9' }],
    ['tag=site=north', { tag: ['site', 'north'] }],
    // Only the first "=" of the tag value separates key and value.
    ['tag=expr=a=b', { tag: ['expr', 'a=b'] }],
  ])('parses %s', (s, want) => {
    expect(parseTarget(s)).toEqual(want)
  })

  it.each([
    '',
    'profile',
    'profile=',
    '=gateway-rpi4',
    'profile=a/b',
    'profile=+',
    'profile=.hidden',
    'device=#',
    'device=-x',
    `device=${'x'.repeat(65)}`,
    'tag=',
    'tag=site',
    'tag=site=',
    'tag==north',
    'tag=si"te=north', // a tag key provisioning would refuse (was silently matched as `site`)
    'tag=a b=c',
    `tag=${'k'.repeat(65)}=v`,
    'group=a',
    'Profile=gateway-rpi4',
    ' profile=gateway-rpi4',
  ])('refuses %j with EF_ERR_TARGET_INVALID', (s) => {
    let caught: unknown
    try {
      parseTarget(s)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(EdgeFleetError)
    expect((caught as EdgeFleetError).code).toBe('EF_ERR_TARGET_INVALID')
    expect((caught as EdgeFleetError).status).toBe(400)
  })
})
