// The `--stream` URL and subject tokens [EF-9.13]: servers and credentials
// from one string, a refused scheme with its code, and model or device names
// that NATS subjects cannot hold written so that no two names share a token.
import { describe, expect, it } from 'vitest'
import { codeOf } from '@edgefleet/shared'
import { parseStreamUrl, subjectToken } from '../../src/stream/index.js'

describe('stream URL and subject tokens [EF-9.13]', () => {
  it('reads the servers of a cluster and the credentials of the first URL', () => {
    expect(parseStreamUrl('nats://u%40x:p%3Aw@10.0.0.1:4222, nats://10.0.0.2:4222,10.0.0.3:4222')).toEqual({
      servers: ['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222', 'nats://10.0.0.3:4222'],
      user: 'u@x',
      pass: 'p:w',
    })
    expect(parseStreamUrl('tls://n1:4222')).toEqual({ servers: ['tls://n1:4222'] })
  })

  it('refuses another scheme or an empty list with EF_ERR_CONFIG_INVALID', () => {
    for (const bad of ['mqtt://n1:1883', ' , '])
      expect(
        codeOf(
          (() => {
            try {
              parseStreamUrl(bad)
            } catch (err) {
              return err
            }
          })(),
        ),
      ).toBe('EF_ERR_CONFIG_INVALID')
  })

  it('keeps [A-Za-z0-9_-] and writes every other byte as ~hh, so distinct names get distinct tokens', () => {
    expect(subjectToken('cam-1_A')).toBe('cam-1_A')
    expect(subjectToken('a.b')).toBe('a~2eb')
    expect(subjectToken('a>*')).toBe('a~3e~2a')
    expect(subjectToken('é')).toBe('~c3~a9')
    expect(subjectToken('')).toBe('~')
    const names = ['a.b', 'a~2eb', 'a_b', 'a b', 'a/b']
    expect(new Set(names.map(subjectToken)).size).toBe(names.length)
  })
})
