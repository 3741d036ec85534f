// Who may publish and subscribe where [EF-1.3]. Pure functions, shared by the
// embedded broker's hooks and the Mosquitto ACL generator.
import { AGENT_PUBLISH_KINDS, parseTopic, isDigest, TOPIC_PREFIX } from '@edgefleet/shared'

/** A device publishes only on its own state/events/telemetry/samples/fetch topics. */
export function devicemayPublish(deviceId: string, topic: string): boolean {
  const t = parseTopic(topic)
  return (
    t !== null &&
    t.kind !== 'chunk' &&
    t.kind !== 'repair' &&
    t.deviceId === deviceId &&
    AGENT_PUBLISH_KINDS.includes(t.kind)
  )
}

/** A device subscribes only to its own cmd and repair topics and to artifact chunk topics [EF-1.3, EF-1.6]. */
export function deviceMaySubscribe(deviceId: string, filter: string): boolean {
  if (filter === `${TOPIC_PREFIX}/dev/${deviceId}/cmd` || filter === `${TOPIC_PREFIX}/dev/${deviceId}/chunk/#`)
    return true
  const parts = filter.split('/')
  return (
    parts.length === 5 &&
    parts[0] === 'ef' &&
    parts[1] === 'v1' &&
    parts[2] === 'art' &&
    isDigest(parts[3]) &&
    (parts[4] === '+' || /^(0|[1-9]\d{0,8})$/.test(parts[4]))
  )
}
