import { describe, expect, it } from 'vitest'
import { EdgeFleetError, parseBrokerUrls } from '../src/index.js'

describe('parseBrokerUrls [EF-4.12]', () => {
  it('keeps one URL as given', () => {
    expect(parseBrokerUrls('mqtt://hub.local:1883')).toEqual({ url: 'mqtt://hub.local:1883' })
  })
  it("turns a cluster's node list into mqtt.js servers, default ports filled in", () => {
    expect(parseBrokerUrls('mqtt://n1:4001, mqtts://n2 ,mqtt://n3')).toEqual({
      url: 'mqtt://n1:4001',
      servers: [
        { protocol: 'mqtt', host: 'n1', port: 4001 },
        { protocol: 'mqtts', host: 'n2', port: 8883 },
        { protocol: 'mqtt', host: 'n3', port: 1883 },
      ],
    })
  })
  it.each([[''], [' , '], ['mqtt://n1:1,http://n2:2'], ['mqtt://n1:1,not a url']])(
    'refuses %j with EF_ERR_CONFIG_INVALID',
    (list) => {
      expect(() => parseBrokerUrls(list)).toThrow(EdgeFleetError)
      try {
        parseBrokerUrls(list)
      } catch (err) {
        expect((err as EdgeFleetError).code).toBe('EF_ERR_CONFIG_INVALID')
      }
    },
  )
})
