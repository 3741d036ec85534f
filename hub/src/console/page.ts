// The console's first page: the fleet at a glance. No framework: one HTML
// document, a few lines of script polling the API.
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>EdgeFleet console</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2430; background: #f5f7fa; }
  body { margin: 0; }
  header { background: #14324f; color: #fff; padding: 12px 24px; display: flex; gap: 24px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header span { opacity: .8; font-size: 13px; }
  main { padding: 16px 24px; }
  .cards { display: flex; gap: 12px; margin-bottom: 16px; flex-wrap: wrap; }
  .card { background: #fff; border-radius: 6px; padding: 10px 16px; box-shadow: 0 1px 2px #0002; min-width: 120px; }
  .card b { display: block; font-size: 22px; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e3e7ee; font-size: 14px; }
  th { background: #eef1f6; }
  .on { color: #0a7a35; font-weight: 600; } .off { color: #a33; }
  h2 { font-size: 15px; margin: 20px 0 8px; }
</style>
</head>
<body>
<header><h1>EdgeFleet</h1><span id="hub"></span><span id="updated"></span></header>
<main>
  <div class="cards">
    <div class="card">devices<b id="c-devices">–</b></div>
    <div class="card">online<b id="c-online">–</b></div>
    <div class="card">requests<b id="c-requests">–</b></div>
    <div class="card">p95 latency<b id="c-p95">–</b></div>
  </div>
  <h2>Devices</h2>
  <table id="devices"><thead><tr><th>device</th><th>profile</th><th>state</th><th>active model</th><th>tags</th><th>last seen</th></tr></thead><tbody></tbody></table>
  <h2>Models in the field</h2>
  <table id="telemetry"><thead><tr><th>model</th><th>version</th><th>devices</th><th>requests</th><th>errors</th><th>p50 ms</th><th>p95 ms</th></tr></thead><tbody></tbody></table>
</main>
<script>
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const fmt = (n) => (n === null || n === undefined ? '–' : n < 10 ? n.toFixed(2) : n.toFixed(0));
async function refresh() {
  const [devs, tel] = await Promise.all([fetch('/api/v1/devices?limit=10000').then((r) => r.json()), fetch('/api/v1/telemetry/summary').then((r) => r.json())]);
  document.getElementById('c-devices').textContent = devs.total;
  document.getElementById('c-online').textContent = devs.items.filter((d) => d.online).length;
  document.querySelector('#devices tbody').innerHTML = devs.items.map((d) => '<tr data-device="' + esc(d.id) + '"><td>' + esc(d.id) + '</td><td>' + esc(d.profile) + '</td><td class="' + (d.online ? 'on">online' : 'off">offline') + '</td><td>' +
    (d.models.map((m) => esc(m.name + '@' + m.version + ' (' + m.precision + ')')).join(', ') || '–') + '</td><td>' + esc(Object.entries(d.tags).map(([k, v]) => k + '=' + v).join(' ')) + '</td><td>' + (d.lastSeen ? new Date(d.lastSeen).toLocaleTimeString() : '–') + '</td></tr>').join('');
  const req = tel.items.reduce((a, t) => a + t.requests, 0);
  document.getElementById('c-requests').textContent = req;
  document.getElementById('c-p95').textContent = tel.items.length ? fmt(Math.max(...tel.items.map((t) => t.p95Ms ?? 0))) + ' ms' : '–';
  document.querySelector('#telemetry tbody').innerHTML = tel.items.map((t) => '<tr><td>' + esc(t.model) + '</td><td>' + esc(t.version) + '</td><td>' + t.devices + '</td><td>' + t.requests + '</td><td>' + t.errors + '</td><td>' + fmt(t.p50Ms) + '</td><td>' + fmt(t.p95Ms) + '</td></tr>').join('');
  document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}
fetch('/api/v1/hub').then((r) => r.json()).then((h) => { document.getElementById('hub').textContent = 'broker ' + h.mqttUrl; });
refresh(); setInterval(refresh, 2000);
</script>
</body>
</html>
`
