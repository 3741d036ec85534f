// @edgefleet/agent public API: embed the agent in an app.
export { createAgent, AGENT_VERSION, type Agent, type AgentDeps } from './agent.js'
export { resolveConfig, defaultAgentOptions, type AgentConfig } from './config.js'
export type { Tensor } from './runtime/session.js'
export type { InferResult } from './runtime/host.js'
export type { AgentStats } from './agent.js'
export { BINARY_CONTENT_TYPE, encodeBinaryRequest, decodeBinaryResponse } from './api/binary.js'
