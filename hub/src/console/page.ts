// The console's document and stylesheet. The script is the bundle of
// ui/main.tsx (hub/scripts/bundle-console.mjs), loaded under a content-hashed
// URL; what it needs to know about the hub comes in a <meta> tag, since the
// CSP runs no inline script.
import { TERMINAL_STATES } from '../store/deployments.js'
import { defaultGates } from '../rollouts/spec.js'

/** Final per-device deployment states that are failures: drawn red, never counted as done. */
const DEPLOY_FAILED = ['rejected', 'health_failed', 'failed', 'rolled_back']

/** Rollout gates the form offers [EF-8.5]: field name, label, the hub's default (the placeholder). */
const GATE_FIELDS = (
  [
    ['maxErrorRateDelta', 'max error-rate delta'],
    ['maxP95Ratio', 'max p95 ratio'],
    ['minShadowAgreement', 'min shadow agreement'],
    ['maxConfidencePsi', 'max confidence PSI'],
  ] as const
).map(([name, label]) => ({ name, label, placeholder: String(defaultGates[name] ?? 'off') }))

const attr = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')

/** The page, loading the script at `scriptPath`. */
export function consoleHtml(scriptPath: string): string {
  const config = JSON.stringify({
    deployDone: [...TERMINAL_STATES],
    deployFailed: DEPLOY_FAILED.filter((s) => TERMINAL_STATES.has(s)),
    gates: GATE_FIELDS,
  })
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="edgefleet-config" content="${attr(config)}">
<title>EdgeFleet console</title>
<link rel="stylesheet" href="/console.css">
<script src="${attr(scriptPath)}" defer></script>
</head>
<body><div id="app"></div></body>
</html>
`
}

export const CONSOLE_CSS = `
:root { font-family: system-ui, sans-serif; color: #1d2430; background: #f5f7fa; }
body { margin: 0; }
header { background: #14324f; color: #fff; padding: 10px 24px; display: flex; gap: 20px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
header span { opacity: .8; font-size: 13px; }
nav a { color: #cfe3ff; margin-right: 14px; text-decoration: none; font-size: 14px; }
nav a.active { color: #fff; font-weight: 600; border-bottom: 2px solid #7fb6ff; }
main { padding: 16px 24px; }
.cards { display: flex; gap: 12px; margin-bottom: 16px; flex-wrap: wrap; }
.card { background: #fff; border-radius: 6px; padding: 10px 16px; box-shadow: 0 1px 2px #0002; }
.stat { min-width: 120px; } .stat b { display: block; font-size: 22px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; margin-bottom: 16px; }
table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #e3e7ee; font-size: 13px; }
th { background: #eef1f6; }
.on, .good { color: #0a7a35; font-weight: 600; } .off, .bad { color: #a33; }
h2 { font-size: 15px; margin: 18px 0 8px; } h3 { font-size: 13px; margin: 0 0 6px; color: #445; }
button { font: inherit; padding: 4px 12px; border-radius: 4px; border: 1px solid #8aa; background: #fff; cursor: pointer; }
button.primary { background: #1d5fa8; color: #fff; border-color: #1d5fa8; }
button.danger { color: #a33; border-color: #a33; }
input, select { font: inherit; padding: 3px 6px; }
.bar { display: inline-block; width: 160px; height: 10px; background: #e3e7ee; border-radius: 5px; overflow: hidden; vertical-align: middle; }
.bar i { display: inline-block; height: 100%; background: #2f8f4e; vertical-align: top; }
.bar i.failed { background: #c0392b; }
tr.failed td { background: #fdecea; }
.state.rejected, .state.failed, .state.health_failed { background: #fee2e2; color: #a33; }
.state.activated { background: #dcfce7; }
.state.waiting_window, .state.waiting_conditions { background: #fef3c7; } .held { color: #8a5a00; }
#who a { color: #cfe3ff; }
pre { background: #14324f; color: #e8f1ff; padding: 10px; border-radius: 4px; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
tr.current td { font-weight: 600; }
.card.version { margin-bottom: 12px; }
.state { padding: 1px 8px; border-radius: 10px; background: #e3e7ee; font-size: 12px; }
.state.running { background: #dbeafe; } .state.completed { background: #dcfce7; } .state.paused, .state.awaiting_approval { background: #fef3c7; } .state.rolled_back, .state.rolling_back, .state.aborted { background: #fee2e2; }
form.inline { display: flex; gap: 8px; flex-wrap: wrap; align-items: end; }
form.inline label { display: flex; flex-direction: column; font-size: 12px; color: #445; }
.signin { max-width: 560px; }
svg text { font-size: 10px; fill: #556; }
td code { word-break: break-all; font-size: 12px; }
.legend span { font-size: 12px; margin-right: 12px; } .legend i { display: inline-block; width: 10px; height: 3px; vertical-align: middle; margin-right: 4px; }
`
