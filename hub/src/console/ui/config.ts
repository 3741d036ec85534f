// What the hub tells the console about itself, in the page's
// <meta name="edgefleet-config"> (no inline script: the CSP forbids it):
// final deployment states and the rollout gates' defaults [EF-8.5].
export interface ConsoleConfig {
  /** Per-device deployment states after which nothing more happens. */
  deployDone: string[]
  /** Of those, the ones that are failures (drawn red). */
  deployFailed: string[]
  gates: { name: string; label: string; placeholder: string }[]
}

const meta = document.querySelector<HTMLMetaElement>('meta[name="edgefleet-config"]')
export const config: ConsoleConfig = meta
  ? (JSON.parse(meta.content) as ConsoleConfig)
  : { deployDone: [], deployFailed: [], gates: [] }
