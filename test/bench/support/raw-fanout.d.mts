import type { MqttClient, IClientOptions } from 'mqtt'
export function connectRawPublisher(o: {
  mqttUrl: string
  hubSecret: string
  mosq?: { url: string; dir: string; proc: { kill(signal: string): boolean } }
  connectOpts?: IClientOptions
}): Promise<MqttClient>
export function publishWindowed(
  pub: MqttClient,
  payloads: Buffer[],
  topicOf: (i: number) => string,
  window?: number,
): Promise<void>
