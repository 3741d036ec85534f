// A broker address may name several nodes of one cluster [EF-4.12]:
// "mqtt://n1:1883,mqtt://n2:1883". Parsed here once, for the agent and the hub,
// into what mqtt.js takes: the first URL, and `servers` to move through on
// every (re)connect, so a client whose node died lands on the next one.
import { EdgeFleetError } from './errors.js'

export interface BrokerServer {
  protocol: 'mqtt' | 'mqtts'
  host: string
  port: number
}

const DEFAULT_PORTS = { mqtt: 1883, mqtts: 8883 }

function parseServer(text: string): BrokerServer {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', `broker ${JSON.stringify(text)} is not a URL (mqtt://host:port)`)
  }
  const protocol = url.protocol.replace(/:$/, '')
  if ((protocol !== 'mqtt' && protocol !== 'mqtts') || url.hostname === '')
    throw new EdgeFleetError(
      'EF_ERR_CONFIG_INVALID',
      `broker ${JSON.stringify(text)} in a list: each entry is mqtt://host:port or mqtts://host:port`,
    )
  return { protocol, host: url.hostname, port: url.port ? Number(url.port) : DEFAULT_PORTS[protocol] }
}

/**
 * One URL (returned as given) or a comma-separated list of mqtt(s):// URLs;
 * throws EF_ERR_CONFIG_INVALID naming the entry that is not one.
 */
export function parseBrokerUrls(list: string): { url: string; servers?: BrokerServer[] } {
  const urls = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  if (urls.length === 0) throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', 'broker URL is empty')
  if (urls.length === 1) return { url: urls[0] }
  return { url: urls[0], servers: urls.map(parseServer) }
}
