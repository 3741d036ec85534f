// @edgefleet/hub public API: start a hub in-process, or reuse its parts.
export { startHub, defaultHubOptions, type Hub, type HubOptions } from './hub.js'
export { loadProfiles, DEFAULT_PROFILES_DIR } from './profiles.js'
export { parseTarget } from './distribution/target.js'
export { histogramQuantile, psi } from './stats.js'
export { readTar, readTarFiles, TarWriter } from './feed/tar.js'
export * as compiler from './compiler/index.js'
