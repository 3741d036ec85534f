// The console's script, served as /console.js. Plain ES5-style JavaScript with
// no template literals (it lives inside one), no framework and no build step:
// hash routes, an API token in sessionStorage, inline SVG line and bar charts.
// hub/test/api/console.test.ts parses it, so a syntax slip fails a test.
import { TERMINAL_STATES } from '../store/deployments.js'
import { defaultGates } from '../rollouts/spec.js'

export const CONSOLE_JS = String.raw`'use strict';
// EdgeFleet console: hash routes, a token in sessionStorage, inline SVG plots.
var TOKEN_KEY = 'edgefleet-token';
// Final per-device deployment states, from the store's definition.
var DEPLOY_DONE = ${JSON.stringify([...TERMINAL_STATES])};
// Rollout gates the form offers [EF-8.5]: field name, label, the hub's default (shown as the placeholder).
var GATE_FIELDS = ${JSON.stringify(
  (
    [
      ['maxErrorRateDelta', 'max error-rate delta'],
      ['maxP95Ratio', 'max p95 ratio'],
      ['minShadowAgreement', 'min shadow agreement'],
      ['maxConfidencePsi', 'max confidence PSI'],
    ] as const
  ).map(([name, label]) => ({ name, label, placeholder: defaultGates[name] ?? 'off' })),
)};
var state = { token: sessionStorage.getItem(TOKEN_KEY), role: 'viewer', timer: null };
var $ = function (s) { return document.querySelector(s); };
var esc = function (s) { return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]; }); };
var fmt = function (n, d) { return n === null || n === undefined ? '–' : typeof n !== 'number' ? esc(n) : Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(d === undefined ? 2 : d); };
var pct = function (n) { return n === null || n === undefined ? '–' : (n * 100).toFixed(1) + '%'; };
var COLORS = ['#1d5fa8', '#d9480f', '#2f8f4e', '#7048e8', '#c2255c', '#0c8599', '#e67700'];

function api(method, path, body) {
  var opts = { method: method, headers: { authorization: 'Bearer ' + state.token } };
  if (body !== undefined) { opts.headers['content-type'] = 'application/json'; opts.body = JSON.stringify(body); }
  return fetch(path, opts).then(function (r) {
    return r.text().then(function (t) {
      var j = t ? JSON.parse(t) : undefined;
      if (r.status === 401 && state.signedIn) { signOut(); }
      if (!r.ok) { var e = new Error((j && j.error ? j.error.code + ': ' + j.error.message : 'HTTP ' + r.status)); e.code = j && j.error && j.error.code; throw e; }
      return j;
    });
  });
}

// ------------------------------------------------------------------ plots
function lineChart(title, series, o) {
  o = o || {};
  var W = 460, H = o.height || 160, L = 44, R = 10, T = 10, B = 22;
  var xs = [], ys = [];
  series.forEach(function (s) { s.points.forEach(function (p) { if (p[1] !== null && isFinite(p[1])) { xs.push(p[0]); ys.push(p[1]); } }); });
  (o.lines || []).forEach(function (l) { ys.push(l.y); });
  var body = '';
  if (!xs.length) body = '<text x="' + W / 2 + '" y="' + H / 2 + '" text-anchor="middle">no data yet</text>';
  else {
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs); if (x1 === x0) x1 = x0 + 1;
    var y0 = o.yMin !== undefined ? o.yMin : Math.min(0, Math.min.apply(null, ys)), y1 = Math.max.apply(null, ys); if (y1 === y0) y1 = y0 + 1; y1 *= 1.1;
    var sx = function (x) { return L + (x - x0) / (x1 - x0) * (W - L - R); }, sy = function (y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
    for (var i = 0; i <= 4; i++) { var yv = y0 + (y1 - y0) * i / 4; body += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + sy(yv) + '" y2="' + sy(yv) + '" stroke="#eef1f6"/><text x="' + (L - 4) + '" y="' + (sy(yv) + 3) + '" text-anchor="end">' + fmt(yv, o.digits) + '</text>'; }
    body += '<text x="' + L + '" y="' + (H - 6) + '">' + new Date(x0).toLocaleTimeString() + '</text><text x="' + (W - R) + '" y="' + (H - 6) + '" text-anchor="end">' + new Date(x1).toLocaleTimeString() + '</text>';
    (o.lines || []).forEach(function (l) { body += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + sy(l.y) + '" y2="' + sy(l.y) + '" stroke="' + l.color + '" stroke-dasharray="4 3"/><text x="' + (W - R) + '" y="' + (sy(l.y) - 3) + '" text-anchor="end">' + esc(l.label) + '</text>'; });
    series.forEach(function (s, k) {
      // A missing value, or a step longer than o.gapMs (no telemetry then), ends the line: gaps stay visible.
      var color = s.color || COLORS[k % COLORS.length], runs = [[]], last = null;
      s.points.forEach(function (p) {
        var ok = p[1] !== null && isFinite(p[1]);
        if (!ok || (last !== null && o.gapMs && p[0] - last > o.gapMs)) { if (runs[runs.length - 1].length) runs.push([]); }
        if (ok) { runs[runs.length - 1].push(sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1)); last = p[0]; }
      });
      runs.forEach(function (pts) {
        if (pts.length > 1) body += '<polyline fill="none" stroke-width="1.8" stroke="' + color + '" points="' + pts.join(' ') + '"/>';
        if (pts.length === 1) body += '<circle r="3" fill="' + color + '" cx="' + pts[0].split(',')[0] + '" cy="' + pts[0].split(',')[1] + '"/>';
      });
    });
  }
  var legend = series.map(function (s, k) { return '<span><i style="background:' + (s.color || COLORS[k % COLORS.length]) + '"></i>' + esc(s.name) + '</span>'; }).join('');
  return '<div class="card chart" data-chart="' + esc(o.id || title) + '"><h3>' + esc(title) + '</h3><svg viewBox="0 0 ' + W + ' ' + H + '" width="100%" role="img" aria-label="' + esc(title) + '">' + body + '</svg><div class="legend">' + legend + '</div></div>';
}

function barChart(title, rows, o) {
  o = o || {};
  var W = 460, rowH = 18, H = Math.max(40, rows.length * rowH + 10), L = 150;
  var max = Math.max.apply(null, rows.map(function (r) { return r.parts.reduce(function (a, p) { return a + p.v; }, 0); }).concat([1]));
  var body = rows.map(function (r, i) {
    var x = L, y = 5 + i * rowH, s = '<text x="' + (L - 6) + '" y="' + (y + 12) + '" text-anchor="end">' + esc(r.label) + '</text>';
    r.parts.forEach(function (p, k) { var w = p.v / max * (W - L - 50); s += '<rect x="' + x + '" y="' + (y + 2) + '" width="' + w.toFixed(1) + '" height="' + (rowH - 5) + '" fill="' + (p.color || COLORS[k]) + '"><title>' + esc(p.name + ': ' + p.v) + '</title></rect>'; x += w; });
    return s + '<text x="' + (x + 4) + '" y="' + (y + 12) + '">' + r.parts.reduce(function (a, p) { return a + p.v; }, 0) + '</text>';
  }).join('');
  var legend = (o.legend || []).map(function (l) { return '<span><i style="background:' + l.color + '"></i>' + esc(l.name) + '</span>'; }).join('');
  return '<div class="card chart" data-chart="' + esc(o.id || title) + '"><h3>' + esc(title) + '</h3><svg viewBox="0 0 ' + W + ' ' + H + '" width="100%" role="img" aria-label="' + esc(title) + '">' + body + '</svg><div class="legend">' + legend + '</div></div>';
}

function progress(done, total) { var f = total ? Math.min(1, done / total) : 0; return '<span class="bar"><i style="width:' + (f * 100).toFixed(1) + '%"></i></span> ' + done + '/' + total; }
var canOperate = function () { return state.role === 'operator' || state.role === 'admin'; };

// ------------------------------------------------------------------ views
var views = {};

views.fleet = function (main, args, page) {
  page = Number(args[0] || 0);
  var filter = sessionStorage.getItem('ef-filter') || '';
  return Promise.all([api('GET', '/api/v1/fleet/summary'), api('GET', '/api/v1/fleet/devices?limit=100&offset=' + page * 100 + (filter ? '&q=' + encodeURIComponent(filter) : '')), api('GET', '/api/v1/rollouts?limit=5'), api('GET', '/api/v1/fleet/health')]).then(function (r) {
    var s = r[0], devs = r[1], ro = r[2], health = r[3];
    var active = ro.items.filter(function (x) { return ['running', 'paused', 'awaiting_approval', 'rolling_back', 'scheduled'].indexOf(x.state) >= 0; }).length;
    main.innerHTML = '<div class="cards"><div class="card stat">devices<b id="c-devices">' + s.total + '</b></div><div class="card stat">online<b id="c-online">' + s.online + '</b></div><div class="card stat">active rollouts<b>' + active + '</b></div></div>' +
      '<div class="grid">' + barChart('Devices by profile', s.byProfile.map(function (p) { return { label: p.profile, parts: [{ name: 'online', v: p.online, color: '#2f8f4e' }, { name: 'offline', v: p.offline, color: '#c9cfd8' }] }; }), { id: 'profiles', legend: [{ name: 'online', color: '#2f8f4e' }, { name: 'offline', color: '#c9cfd8' }] }) +
      barChart('Model versions in the field', s.byVersion.map(function (v) { return { label: v.model + '@' + v.version, parts: [{ name: 'devices', v: v.devices, color: '#1d5fa8' }] }; }), { id: 'versions' }) + '</div>' +
      fleetHealth(health) +
      '<h2>Devices</h2><form class="inline" id="filter"><label>filter<input name="q" value="' + esc(filter) + '" placeholder="id, profile or tag"></label><button>apply</button><span>' + devs.total + ' devices · page ' + (page + 1) + ' of ' + Math.max(1, Math.ceil(devs.total / 100)) + '</span>' +
      (page > 0 ? '<a href="#/fleet/' + (page - 1) + '">previous</a>' : '') + ((page + 1) * 100 < devs.total ? '<a href="#/fleet/' + (page + 1) + '">next</a>' : '') + '</form>' +
      '<table id="devices"><thead><tr><th>device</th><th>profile</th><th>state</th><th>agent</th><th>models</th><th>tags</th><th>last seen</th></tr></thead><tbody>' +
      devs.items.map(function (d) { return '<tr data-device="' + esc(d.id) + '"><td><a href="#/device/' + encodeURIComponent(d.id) + '">' + esc(d.id) + '</a></td><td>' + esc(d.profile) + '</td><td class="' + (d.online ? 'on">online' : 'off">offline') + '</td><td>' + esc(d.agentVersion || '–') + '</td><td>' + (d.models.map(function (m) { return esc(m.name + '@' + m.version); }).join(', ') || '–') + '</td><td>' + esc(Object.keys(d.tags).map(function (k) { return k + '=' + d.tags[k]; }).join(' ')) + '</td><td>' + (d.lastSeen ? new Date(d.lastSeen).toLocaleTimeString() : '–') + '</td></tr>'; }).join('') + '</tbody></table>';
    $('#filter').onsubmit = function (e) { e.preventDefault(); sessionStorage.setItem('ef-filter', e.target.q.value); location.hash = '#/fleet/0'; route(); };
  });
};

// Fleet-wide health distributions [EF-9.12]: each metric's latest value per device, in ten bins.
function fleetHealth(h) {
  var M = [['rssBytes', 'Agent RSS (MiB)', 1048576, 'rss'], ['cpuLoad', 'Load average', 1, 'load'], ['freeStorageBytes', 'Free storage (MiB)', 1048576, 'storage'], ['temperatureC', 'Temperature (°C)', 1, 'temperature']];
  return '<h2>Fleet health · ' + h.devices + ' devices reporting' + (h.alerting.length ? ' · <span class="bad" id="alerting">' + h.alerting.length + ' alerting: ' + h.alerting.map(function (a) { return '<a href="#/device/' + encodeURIComponent(a.deviceId) + '">' + esc(a.deviceId) + '</a> (' + esc(a.metrics.join(', ')) + ')'; }).join(', ') + '</span>' : '') + '</h2><div class="grid">' +
    M.map(function (m) { var d = h.metrics[m[0]]; return barChart(m[1] + (d.n ? ' · p50 ' + fmt(d.p50 / m[2]) + ' · p95 ' + fmt(d.p95 / m[2]) : ''), d.bins.map(function (b) { return { label: fmt(b.lo / m[2]) + '–' + fmt(b.hi / m[2]), parts: [{ name: 'devices', v: b.n, color: '#0c8599' }] }; }), { id: 'fleet-' + m[3] }); }).join('') + '</div>';
}

function telemetryCharts(series, prefix, bucketMs) {
  var byVersion = {};
  series.forEach(function (p) { (byVersion[p.version] = byVersion[p.version] || []).push(p); });
  var vs = Object.keys(byVersion);
  var lat = [], err = [];
  vs.forEach(function (v) { var pts = byVersion[v]; lat.push({ name: v + ' p50', points: pts.map(function (p) { return [p.ts, p.p50Ms]; }) }); lat.push({ name: v + ' p95', points: pts.map(function (p) { return [p.ts, p.p95Ms]; }) }); err.push({ name: v, points: pts.map(function (p) { return [p.ts, p.requests ? p.errors / p.requests : null]; }) }); });
  var conf = vs.map(function (v) { var c = new Array(10).fill(0); byVersion[v].forEach(function (p) { p.confidence.forEach(function (n, i) { c[i] += n; }); }); return { v: v, c: c }; });
  var gap = bucketMs ? bucketMs * 1.5 : undefined;
  return '<div class="grid">' + lineChart('Latency p50 / p95 (ms)', lat, { id: prefix + 'latency', gapMs: gap }) + lineChart('Error rate', err, { id: prefix + 'errors', digits: 3, gapMs: gap }) +
    barChart('Confidence (requests per bin)', conf.length ? [].concat.apply([], conf.map(function (x) { return x.c.map(function (n, i) { return { label: x.v + ' ' + (i / 10).toFixed(1) + '–' + ((i + 1) / 10).toFixed(1), parts: [{ name: 'requests', v: n, color: '#7048e8' }] }; }); })) : [], { id: prefix + 'confidence' }) + '</div>';
}

var MiB = 1048576;
// Health cards and charts of one device [EF-9.12]: vitals against the profile's thresholds, stats over time.
function healthSection(h) {
  var l = h.latest || {}, t = h.thresholds || {}, hot = {};
  h.breaches.forEach(function (b) { hot[b.metric] = b.text; });
  var card = function (label, value, metric, id) { return '<div class="card stat" data-health="' + id + '">' + label + '<b class="' + (hot[metric] ? 'bad' : '') + '"' + (hot[metric] ? ' title="' + esc(hot[metric]) + '"' : '') + '>' + value + '</b></div>'; };
  var mb = function (b) { return b === undefined ? '–' : (b / MiB).toFixed(0) + ' MiB'; };
  var pts = function (key, scale) { return h.series.map(function (p) { return [p.ts, p[key] === undefined ? null : p[key] / (scale || 1)]; }); };
  var line = function (y, label) { return y === undefined ? [] : [{ y: y, label: label, color: '#a33' }]; };
  var gap = 60000; // telemetry comes every few seconds; a minute without any is a gap
  return '<h2>Health</h2><div class="cards">' +
    card('agent', esc(h.agentVersion || 'unknown'), '', 'agent') +
    card('last telemetry', h.lastTelemetry ? new Date(h.lastTelemetry).toLocaleTimeString() : 'never', '', 'last') +
    card('conditions', esc('network ' + (h.conditions.network || '–') + ' · power ' + (h.conditions.power || '–') + ' · ' + (h.conditions.idle === null ? 'idle –' : h.conditions.idle ? 'idle' : 'busy')), '', 'conditions') +
    card('providers', esc(Object.keys(h.providers).map(function (m) { return m + ': ' + h.providers[m]; }).join(', ') || '–'), '', 'providers') +
    card('RSS', mb(l.rssBytes), 'rss', 'rss') + card('load', fmt(l.cpuLoad), 'cpuLoad', 'load') + card('free storage', mb(l.freeStorageBytes), 'freeStorage', 'storage') +
    card('temperature', l.temperatureC === undefined ? '–' : fmt(l.temperatureC, 1) + ' °C', 'temperature', 'temperature') + '</div>' +
    '<div class="grid">' + lineChart('Agent RSS (MiB)', [{ name: 'RSS', points: pts('rssBytes', MiB) }], { id: 'health-rss', gapMs: gap, lines: line(t.maxRssMb, 'alert') }) +
    lineChart('Load average', [{ name: 'load', points: pts('cpuLoad') }], { id: 'health-load', gapMs: gap, lines: line(t.maxCpuLoad, 'alert') }) +
    lineChart('Free storage (MiB)', [{ name: 'free', points: pts('freeStorageBytes', MiB) }], { id: 'health-storage', gapMs: gap, lines: line(t.minFreeStorageMb, 'alert') }) +
    lineChart('Temperature (°C)', [{ name: 'temperature', points: pts('temperatureC') }], { id: 'health-temperature', gapMs: gap, lines: line(t.maxTemperatureC, 'alert') }) + '</div>';
}

views.device = function (main, args) {
  var id = decodeURIComponent(args[0] || '');
  var base = '/api/v1/devices/' + encodeURIComponent(id);
  return Promise.all([api('GET', base), api('GET', base + '/health')]).then(function (rh) {
    var r = rh[0], d = r.device;
    // One set of charts per model the device runs, not only the first.
    return Promise.all(d.models.map(function (m) { return api('GET', '/api/v1/telemetry/series?bucketMs=10000&model=' + encodeURIComponent(m.name) + '&device=' + encodeURIComponent(id)); })).then(function (ss) {
      main.innerHTML = '<h2>Device ' + esc(d.id) + '</h2><div class="cards"><div class="card stat">profile<b>' + esc(d.profile) + '</b></div><div class="card stat">state<b class="' + (d.online ? 'on">online' : 'off">offline') + '</b></div><div class="card stat">agent<b>' + esc(d.agentVersion || '–') + '</b></div><div class="card stat">models<b>' + (d.models.map(function (m) { return esc(m.name + '@' + m.version); }).join(', ') || '–') + '</b></div></div>' +
        healthSection(rh[1]) +
        d.models.map(function (m, i) { return '<h2>Model ' + esc(m.name) + '</h2>' + telemetryCharts(ss[i].items, i === 0 ? 'device-' : 'device-' + m.name + '-', 10000); }).join('') +
        '<h2>Events</h2><table><thead><tr><th>time</th><th>kind</th><th>model</th><th>code</th><th>message</th></tr></thead><tbody>' + r.events.map(function (e) { return '<tr><td>' + new Date(e.ts).toLocaleString() + '</td><td class="' + (e.kind === 'health_alert' ? 'bad' : '') + '">' + esc(e.kind) + '</td><td>' + esc((e.model || '') + (e.version ? '@' + e.version : '')) + '</td><td>' + esc(e.code || '') + '</td><td>' + esc(e.message || '') + '</td></tr>'; }).join('') + '</tbody></table>';
    });
  });
};

views.models = function (main) {
  return api('GET', '/api/v1/models').then(function (r) {
    var pairs = []; r.items.forEach(function (m) { m.versions.forEach(function (v) { pairs.push([m.name, v]); }); });
    return Promise.all(pairs.slice(-12).map(function (p) { return api('GET', '/api/v1/models/' + encodeURIComponent(p[0]) + '/versions/' + encodeURIComponent(p[1])); })).then(function (vs) {
      main.innerHTML = '<h2>Models and builds</h2>' + (vs.length ? '' : '<p>No model registered yet.</p>') + vs.reverse().map(function (v) {
        return '<div class="card" style="margin-bottom:12px"><h3>' + esc(v.version.model + '@' + v.version.version) + ' · ' + v.version.size + ' bytes · ' + new Date(v.version.createdAt).toLocaleString() + '</h3><table><thead><tr><th>profile</th><th>status</th><th>precision</th><th>size</th><th>validation</th></tr></thead><tbody>' +
          v.builds.map(function (b) { var rep = b.report || {}; var keys = Object.keys(rep).filter(function (k) { return typeof rep[k] === 'number' || typeof rep[k] === 'string' || typeof rep[k] === 'boolean'; }).slice(0, 6); return '<tr><td>' + esc(b.profile) + '</td><td class="' + (b.status === 'ok' ? 'good' : 'bad') + '">' + esc(b.status) + '</td><td>' + esc(b.precision || '–') + '</td><td>' + (b.sizeBytes || '–') + '</td><td>' + (b.errorCode ? esc(b.errorCode + ' ' + (b.error || '')) : keys.map(function (k) { return esc(k) + '=' + fmt(rep[k], 4); }).join(' · ')) + '</td></tr>'; }).join('') + '</tbody></table></div>';
      }).join('');
    });
  });
};

// The retraining loop of one model [EF-9]: lineage (which version came from
// which, with its builds and rollouts), drift per version × profile × input,
// and the newest feed records that training pipelines read.
views.retraining = function (main, args) {
  return api('GET', '/api/v1/models').then(function (list) {
    var names = list.items.map(function (m) { return m.name; });
    var model = args[0] ? decodeURIComponent(args[0]) : names[0];
    var picker = '<p id="model-picker">' + names.map(function (n) { return '<a href="#/retraining/' + encodeURIComponent(n) + '"' + (n === model ? ' style="font-weight:600"' : '') + '>' + esc(n) + '</a>'; }).join(' · ') + '</p>';
    if (!model) { main.innerHTML = '<h2>Retraining loop</h2><p>No model registered yet.</p>'; return; }
    var m = encodeURIComponent(model);
    return Promise.all([api('GET', '/api/v1/models/' + m + '/lineage'), api('GET', '/api/v1/drift?model=' + m), api('GET', '/api/v1/retraining/status'), fetch('/api/v1/feed?model=' + m + '&limit=500', { headers: { authorization: 'Bearer ' + state.token } }).then(function (r) { return r.text(); })]).then(function (r) {
      var lineage = r[0], drift = r[1], status = r[2];
      var feed = r[3].split('\n').filter(Boolean).map(function (l) { try { return JSON.parse(l); } catch (e) { return null; } }).filter(Boolean).slice(-20).reverse();
      var open = drift.items.filter(function (d) { return d.open; }).length;
      main.innerHTML = '<h2>Retraining loop: ' + esc(model) + '</h2>' + picker +
        '<div class="cards"><div class="card stat">versions<b>' + lineage.items.length + '</b></div><div class="card stat">drifting now<b id="drift-open" class="' + (open ? 'bad' : 'good') + '">' + open + '</b></div><div class="card stat">feed records<b>' + Object.keys(status.feed.byKind).reduce(function (a, k) { return a + status.feed.byKind[k]; }, 0) + '</b></div><div class="card stat">drift threshold (PSI)<b>' + fmt(drift.threshold) + '</b></div></div>' +
        '<h2>Lineage</h2><table id="lineage"><thead><tr><th>version</th><th>from</th><th>run</th><th>builds</th><th>rollouts</th><th>baselines</th><th>drifting</th></tr></thead><tbody>' +
        lineage.items.map(function (v) { return '<tr data-version="' + esc(v.version) + '"><td>' + esc(v.version) + '</td><td>' + esc(v.parent || '–') + '</td><td>' + esc(v.runId || '–') + '</td><td>' + v.builds.map(function (b) { return '<span class="' + (b.status === 'ok' ? 'good' : 'bad') + '">' + esc(b.profile + ':' + (b.precision || b.errorCode)) + '</span>'; }).join(' ') + '</td><td>' + v.rollouts.map(function (x) { return '<a href="#/rollout/' + encodeURIComponent(x.id) + '">' + esc(x.state) + '</a>'; }).join(' ') + '</td><td>' + esc(v.baselines.map(function (b) { return b.profile + ' (' + b.source + ')'; }).join(', ')) + '</td><td>' + esc((v.drifting || []).map(function (d) { return typeof d === 'string' ? d : (d.profile || '') + ' ' + (d.subject || ''); }).join(', ') || '–') + '</td></tr>'; }).join('') + '</tbody></table>' +
        (function () { var waiting = drift.items.filter(function (d) { return d.status === 'no_baseline_yet'; }); return waiting.length ? '<p id="no-baseline">No baseline yet (drift is measured once a version\'s first requests in the field are in, or a baseline is posted): ' + esc(waiting.map(function (d) { return d.version + ' ' + d.profile + ' ' + d.subject; }).join(', ')) + '</p>' : ''; })() + barChart('Drift (PSI) per version · profile · input', drift.items.filter(function (d) { return d.status !== 'no_baseline_yet'; }).slice(0, 24).map(function (d) { return { label: d.version + ' ' + d.profile + ' ' + d.subject, parts: [{ name: 'PSI', v: Math.round((d.psi || 0) * 1000) / 1000, color: d.open ? '#c0392b' : '#1d5fa8' }] }; }), { id: 'drift' }) +
        '<h2>Latest feed records</h2><table id="feed"><thead><tr><th>cursor</th><th>kind</th><th>version</th><th>time</th><th>detail</th></tr></thead><tbody>' +
        feed.map(function (f) { return '<tr data-kind="' + esc(f.kind) + '"><td>' + esc(f.cursor) + '</td><td>' + esc(f.kind) + '</td><td>' + esc(f.version || '') + '</td><td>' + (f.ts ? new Date(f.ts).toLocaleString() : '–') + '</td><td><code>' + esc(JSON.stringify(f.body || f).slice(0, 160)) + '</code></td></tr>'; }).join('') + '</tbody></table>';
    });
  });
};

views.telemetry = function (main, args) {
  return api('GET', '/api/v1/models').then(function (r) {
    var model = decodeURIComponent(args[0] || (r.items[0] && r.items[0].name) || '');
    if (!model) { main.innerHTML = '<p>No telemetry yet.</p>'; return; }
    return api('GET', '/api/v1/telemetry/series?bucketMs=10000&model=' + encodeURIComponent(model)).then(function (s) {
      main.innerHTML = '<h2>Telemetry</h2><p>' + r.items.map(function (m) { return '<a href="#/telemetry/' + encodeURIComponent(m.name) + '">' + (m.name === model ? '<b>' + esc(m.name) + '</b>' : esc(m.name)) + '</a>'; }).join(' · ') + '</p>' + telemetryCharts(s.items, 'fleet-', 10000);
    });
  });
};

var FINAL = ['completed', 'aborted', 'rolled_back'];
// A gate field as the API takes it [EF-8.5]: empty → the hub's default, 'off' → null, a number → that
// number; anything else is sent as typed so the hub refuses it with EF_ERR_GATES_INVALID (never NaN → null → 0).
function gateValue(text) { var t = text.trim(); if (t === '') return undefined; if (t === 'off') return null; return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) ? Number(t) : t; }
function formGates(f) { var gates = {}; ['minRequests'].concat(GATE_FIELDS.map(function (g) { return g.name; })).forEach(function (name) { var v = gateValue(f[name].value); if (v !== undefined) gates[name] = v; }); return gates; }

function waveSummary(r) { var done = (r.totals.activated || 0) + (r.totals.skipped || 0); return progress(done, r.devices); }

views.rollouts = function (main) {
  return Promise.all([api('GET', '/api/v1/rollouts?limit=50'), api('GET', '/api/v1/models')]).then(function (r) {
    var list = r[0], models = r[1];
    var opts = []; models.items.forEach(function (m) { m.versions.forEach(function (v) { opts.push('<option value="' + esc(m.name + '@' + v) + '">' + esc(m.name + '@' + v) + '</option>'); }); });
    main.innerHTML = (canOperate() ? '<h2>New rollout</h2><form class="inline card" id="create"><label>version<select name="ref">' + opts.reverse().join('') + '</select></label><label>selector<input name="selector" placeholder="tag=fleet=demo" size="28" required></label><label>waves<input name="waves" value="1,50%,100%" size="14"></label><label>soak (s)<input name="soak" value="600" size="5"></label><label>min requests<input name="minRequests" value="20" size="5"></label>' + GATE_FIELDS.map(function (g) { return '<label>' + esc(g.label) + '<input name="' + g.name + '" placeholder="' + esc(g.placeholder) + '" size="5"></label>'; }).join('') + '<label>on failure<select name="onFail"><option>pause</option><option>rollback</option></select></label><label><span><input type="checkbox" name="windows" checked> maintenance windows</span></label><button class="primary" id="create-btn">Create rollout</button><span id="create-error" class="bad"></span></form>' : '') +
      '<h2>Rollouts</h2><table id="rollouts"><thead><tr><th>rollout</th><th>version</th><th>selector</th><th>state</th><th>wave</th><th>progress</th><th>created</th></tr></thead><tbody>' +
      list.items.map(function (x) { return '<tr data-rollout="' + esc(x.id) + '"><td><a href="#/rollout/' + esc(x.id) + '">' + esc(x.id.slice(0, 8)) + '</a></td><td>' + esc(x.model + '@' + x.version) + '</td><td>' + esc(x.selectorText) + '</td><td><span class="state ' + esc(x.state) + '">' + esc(x.state) + '</span></td><td>' + (x.wave + 1) + '/' + x.waves.length + ' ' + esc(x.phase) + '</td><td>' + waveSummary(x) + '</td><td>' + new Date(x.createdAt).toLocaleString() + '</td></tr>'; }).join('') + '</tbody></table>';
    var f = $('#create');
    if (f) f.onsubmit = function (e) {
      e.preventDefault();
      var ref = f.ref.value, at = ref.lastIndexOf('@');
      var waves = f.waves.value.split(',').map(function (w) { w = w.trim(); return /%$/.test(w) ? { percent: Number(w.slice(0, -1)) } : { count: Number(w) }; });
      api('POST', '/api/v1/rollouts', { model: ref.slice(0, at), version: ref.slice(at + 1), selector: f.selector.value, waves: waves, soakMs: Math.round(Number(f.soak.value) * 1000), gates: formGates(f), onFail: f.onFail.value, schedule: { maintenanceWindows: f.windows.checked } })
        .then(function (r) { location.hash = '#/rollout/' + r.rollout.id; })
        .catch(function (err) { $('#create-error').textContent = err.message; });
    };
  });
};

views.rollout = function (main, args) {
  var id = args[0];
  return api('GET', '/api/v1/rollouts/' + encodeURIComponent(id)).then(function (v) {
    var r = v.rollout, g = r.spec.gates, samples = v.gateSamples;
    var series = function (k) { return samples.map(function (s) { return [s.ts, s.values[k]]; }); };
    var actions = [];
    if (canOperate() && FINAL.indexOf(r.state) < 0) {
      if (['running', 'scheduled', 'awaiting_approval'].indexOf(r.state) >= 0) actions.push('<button data-action="pause">Pause</button>');
      if (r.state === 'paused') actions.push('<button data-action="resume" class="primary">Resume</button>');
      if (r.state === 'awaiting_approval') actions.push('<button data-action="approve" class="primary">Approve next wave</button>');
      if (r.state !== 'rolling_back') actions.push('<button data-action="promote">Promote now</button>', '<button data-action="rollback" class="danger">Roll back</button>');
      actions.push('<button data-action="abort" class="danger">Abort</button>');
    }
    main.innerHTML = '<h2>Rollout ' + esc(r.id) + '</h2><div class="cards"><div class="card stat">version<b>' + esc(r.model + '@' + r.version) + '</b></div><div class="card stat">state<b><span id="rollout-state" class="state ' + esc(r.state) + '">' + esc(r.state) + '</span></b></div><div class="card stat">wave<b id="rollout-wave">' + (r.wave + 1) + '/' + r.waves.length + ' ' + esc(r.phase) + '</b></div><div class="card stat">selector<b>' + esc(r.selectorText) + '</b></div></div>' +
      (r.reason ? '<p id="rollout-reason">' + esc(r.reason) + '</p>' : '') + '<p id="actions">' + actions.join(' ') + '</p><p id="action-error" class="bad"></p>' +
      '<table id="waves"><thead><tr><th>wave</th><th>target</th><th>soak</th><th>progress</th><th>statuses</th></tr></thead><tbody>' +
      r.waves.map(function (w) { var done = (w.counts.activated || 0) + (w.counts.skipped || 0); return '<tr data-wave="' + (w.index + 1) + '"' + (w.index === r.wave && FINAL.indexOf(r.state) < 0 ? ' style="font-weight:600"' : '') + '><td>' + (w.index + 1) + '</td><td>' + (w.percent !== null ? w.percent + '%' : w.count + ' devices') + '</td><td>' + (w.soakMs / 1000) + ' s</td><td>' + progress(done, w.devices) + '</td><td>' + esc(Object.keys(w.counts).map(function (k) { return k + '=' + w.counts[k]; }).join(' ')) + '</td></tr>'; }).join('') + '</tbody></table>' +
      '<h2>Gate values over time</h2><div class="grid">' +
      lineChart('Error rate (wave vs baseline)', [{ name: 'wave', points: series('errorRate') }, { name: 'baseline', points: series('baselineErrorRate') }], { id: 'gate-errors', digits: 3, lines: g.maxErrorRateDelta !== null ? [{ y: g.maxErrorRateDelta, color: '#a33', label: '+' + g.maxErrorRateDelta + ' over baseline' }] : [] }) +
      lineChart('p95 latency ratio', [{ name: 'wave / baseline', points: series('p95Ratio') }], { id: 'gate-p95', lines: g.maxP95Ratio !== null ? [{ y: g.maxP95Ratio, color: '#a33', label: 'max ' + g.maxP95Ratio }] : [] }) +
      lineChart('Shadow agreement', [{ name: 'top-1 agreement', points: series('shadowAgreement') }], { id: 'gate-shadow', lines: g.minShadowAgreement !== null ? [{ y: g.minShadowAgreement, color: '#a33', label: 'min ' + g.minShadowAgreement }] : [] }) +
      lineChart('Confidence shift (PSI)', [{ name: 'PSI vs baseline', points: series('confidencePsi') }], { id: 'gate-psi', lines: g.maxConfidencePsi !== null ? [{ y: g.maxConfidencePsi, color: '#a33', label: 'max ' + g.maxConfidencePsi }] : [] }) + '</div>' +
      '<h2>Decisions</h2><table id="decisions"><thead><tr><th>time</th><th>wave</th><th>kind</th><th>decision</th><th>by</th><th>numbers</th></tr></thead><tbody>' +
      v.decisions.slice().reverse().map(function (d) { return '<tr><td>' + new Date(d.ts).toLocaleString() + '</td><td>' + (d.wave + 1) + '</td><td>' + esc(d.kind) + '</td><td>' + esc(d.decision) + '</td><td>' + esc(d.actor || 'hub') + '</td><td><code>' + esc(JSON.stringify(d.detail).slice(0, 240)) + '</code></td></tr>'; }).join('') + '</tbody></table>';
    Array.prototype.forEach.call(document.querySelectorAll('#actions button'), function (b) {
      b.onclick = function () { api('POST', '/api/v1/rollouts/' + encodeURIComponent(id) + '/' + b.dataset.action, {}).then(route).catch(function (e) { $('#action-error').textContent = e.message; }); };
    });
  });
};

// Fleet capture policies [EF-8.15]: list, create (selector, model, rate, caps, privacy filter), delete.
function capturePrivacy(f) {
  var list = function (v) { return v.split(',').map(function (x) { return x.trim(); }).filter(Boolean); };
  var p = {};
  if (f.drop.value.trim()) p.dropInputs = list(f.drop.value);
  if (f.hash.value.trim()) p.hashInputs = list(f.hash.value);
  if (f.dropOutputs.value.trim()) p.dropOutputs = list(f.dropOutputs.value);
  if (f.blank.value.trim()) p.blankRegions = f.blank.value.split(';').map(function (b) { var m = /^\s*(.+):(NCHW|NHWC):(\d+),(\d+),(\d+),(\d+)\s*$/.exec(b); if (!m) throw new Error('blank region must be INPUT:NCHW|NHWC:X,Y,W,H'); return { input: m[1], layout: m[2], x: +m[3], y: +m[4], width: +m[5], height: +m[6] }; });
  if (f.allowAudio.checked) p.allowAudio = true;
  return Object.keys(p).length ? p : undefined;
}
function privacyText(p) {
  if (!p) return '–';
  var parts = [];
  if (p.dropInputs) parts.push('drop ' + p.dropInputs.join(','));
  if (p.hashInputs) parts.push('hash ' + p.hashInputs.join(','));
  if (p.dropOutputs) parts.push('drop outputs ' + p.dropOutputs.join(','));
  (p.blankRegions || []).forEach(function (r) { parts.push('blank ' + r.input + ' ' + r.x + ',' + r.y + ' ' + r.width + '×' + r.height); });
  parts.push(p.allowAudio ? 'audio allowed' : 'no audio');
  return parts.join('; ');
}
views.capture = function (main) {
  return Promise.all([api('GET', '/api/v1/capture-policies'), api('GET', '/api/v1/models')]).then(function (r) {
    var list = r[0], models = r[1];
    main.innerHTML = (canOperate() ? '<h2>New capture policy</h2><form class="inline card" id="capture-create"><label>name<input name="name" size="12"></label><label>selector<input name="selector" placeholder="tag=site=north" size="22" required></label><label>model<select name="model"><option value="">(every model)</option>' + models.items.map(function (m) { return '<option>' + esc(m.name) + '</option>'; }).join('') + '</select></label><label>random<input name="random" value="0.05" size="5"></label><label>confidence below<input name="confidenceBelow" size="5"></label><label>MB/hour<input name="mbHour" value="10" size="4"></label><label>MB on disk<input name="mbDisk" value="50" size="4"></label><label>drop inputs<input name="drop" size="10"></label><label>hash inputs<input name="hash" size="10"></label><label>drop outputs<input name="dropOutputs" size="10"></label><label>blank regions<input name="blank" placeholder="image:NCHW:0,0,64,32" size="20"></label><label><span><input type="checkbox" name="allowAudio"> audio may leave</span></label><button class="primary" id="capture-create-btn">Create policy</button><span id="create-error" class="bad"></span></form>' : '') +
      '<h2>Capture policies</h2><p>Applied to matching devices now and when they join or reconnect; the privacy filter runs on the device.</p><table id="capture-policies"><thead><tr><th>policy</th><th>selector</th><th>model</th><th>random</th><th>conf. below</th><th>caps (hour / disk)</th><th>privacy</th><th>devices</th><th></th></tr></thead><tbody>' +
      list.items.map(function (p) { return '<tr data-policy="' + esc(p.id) + '"><td>' + esc(p.name) + '<br><small>' + esc(p.id) + '</small></td><td>' + esc(p.selectorText) + '</td><td>' + esc(p.model || '(all)') + '</td><td>' + fmt(p.random) + '</td><td>' + fmt(p.confidenceBelow) + '</td><td>' + fmt(p.maxBytesPerHour / 1e6, 1) + ' MB / ' + fmt(p.maxBytesOnDisk / 1e6, 1) + ' MB</td><td>' + esc(privacyText(p.privacy)) + '</td><td>' + p.matched + '</td><td>' + (canOperate() ? '<button data-delete="' + esc(p.id) + '">Delete</button>' : '') + '</td></tr>'; }).join('') + '</tbody></table>';
    document.querySelectorAll('button[data-delete]').forEach(function (b) {
      b.onclick = function () { api('DELETE', '/api/v1/capture-policies/' + encodeURIComponent(b.dataset.delete)).then(route).catch(function (e) { $('#create-error').textContent = e.message; }); };
    });
    var f = $('#capture-create');
    if (f) f.onsubmit = function (e) {
      e.preventDefault();
      try {
        var body = { selector: f.selector.value, random: Number(f.random.value || 0), maxBytesPerHour: Math.round(Number(f.mbHour.value) * 1e6), maxBytesOnDisk: Math.round(Number(f.mbDisk.value) * 1e6) };
        if (f.name.value.trim()) body.name = f.name.value.trim();
        if (f.model.value) body.model = f.model.value;
        if (f.confidenceBelow.value.trim()) body.confidenceBelow = Number(f.confidenceBelow.value);
        var privacy = capturePrivacy(f); if (privacy) body.privacy = privacy;
      } catch (err) { $('#create-error').textContent = err.message; return; }
      api('POST', '/api/v1/capture-policies', body).then(function () { $('#create-error').textContent = ''; f.reset(); return route(); }).catch(function (err) { $('#create-error').textContent = err.message; });
    };
  });
};

views.deployments = function (main) {
  return api('GET', '/api/v1/deployments?limit=20').then(function (list) {
    var shown = list.items.slice(0, 5);
    return Promise.all(shown.map(function (d) { return api('GET', '/api/v1/deployments/' + encodeURIComponent(d.id)); })).then(function (views) {
      main.innerHTML = '<h2>Deployments</h2><table id="deployments"><thead><tr><th>created</th><th>version</th><th>target</th><th>devices done</th><th>states</th></tr></thead><tbody>' +
        list.items.map(function (d) { var n = Object.keys(d.counts).reduce(function (a, k) { return a + d.counts[k]; }, 0); var done = DEPLOY_DONE.reduce(function (a, k) { return a + (d.counts[k] || 0); }, 0); return '<tr><td>' + new Date(d.createdAt).toLocaleString() + '</td><td>' + esc(d.model + '@' + d.version) + (d.rollback ? ' (rollback)' : '') + '</td><td>' + esc(d.target) + '</td><td>' + progress(done, n) + '</td><td>' + esc(Object.keys(d.counts).map(function (k) { return k + '=' + d.counts[k]; }).join(' ')) + '</td></tr>'; }).join('') + '</tbody></table>' +
        views.map(function (v) {
          var d = v.deployment;
          return '<h2>' + esc(d.model + '@' + d.version) + ' → ' + esc(d.target) + (d.done ? '' : ' (in progress)') + '</h2><table class="deployment-devices" data-deployment="' + esc(d.id) + '"><thead><tr><th>device</th><th>state</th><th>download</th><th>code</th></tr></thead><tbody>' +
            v.devices.map(function (x) { var size = function (b) { return b >= 1048576 ? (b / 1048576).toFixed(1) + ' MiB' : (b / 1024).toFixed(1) + ' KiB'; }; return '<tr data-device="' + esc(x.deviceId) + '"><td>' + esc(x.deviceId) + '</td><td><span class="state ' + esc(x.state) + '">' + esc(x.state) + '</span></td><td>' + (x.totalBytes ? '<span class="bar"><i style="width:' + (Math.min(1, x.bytes / x.totalBytes) * 100).toFixed(1) + '%"></i></span> ' + size(x.bytes) + ' / ' + size(x.totalBytes) : '–') + '</td><td>' + esc(x.code || '') + '</td></tr>'; }).join('') + '</tbody></table>';
        }).join('');
    });
  });
};

// ------------------------------------------------------------------ shell
function route() {
  var parts = (location.hash || '#/fleet').slice(2).split('/');
  var name = views[parts[0]] ? parts[0] : 'fleet';
  Array.prototype.forEach.call(document.querySelectorAll('nav a'), function (a) { a.className = a.getAttribute('href').slice(2).split('/')[0] === name.replace(/^(device|rollout)$/, function (m) { return m === 'device' ? 'fleet' : 'rollouts'; }) ? 'active' : ''; });
  var main = $('#main');
  return views[name](main, parts.slice(1)).then(function () { $('#updated').textContent = 'updated ' + new Date().toLocaleTimeString(); document.body.dataset.view = name; }).catch(function (e) { if (state.token) main.innerHTML = '<p class="bad">' + esc(e.message) + '</p>'; });
}

function signOut() { sessionStorage.removeItem(TOKEN_KEY); state.token = null; clearInterval(state.timer); location.reload(); }

function start() {
  api('GET', '/api/v1/whoami').then(function (w) {
    state.role = w.role;
    state.signedIn = true;
    $('#who').innerHTML = esc(w.name) + ' (' + esc(w.role) + ') · <a href="#" id="signout" style="color:#cfe3ff">sign out</a>';
    $('#signout').onclick = function (e) { e.preventDefault(); signOut(); };
    $('#nav').hidden = false;
    window.onhashchange = route;
    route();
    // Live pages refresh; forms are left alone while someone types in them.
    // No refresh while the operator edits a form or reads its error (a re-render would wipe both).
    state.timer = setInterval(function () { var a = document.activeElement; if ((!a || ['INPUT', 'SELECT', 'BUTTON'].indexOf(a.tagName) < 0) && !document.querySelector('#create-error:not(:empty)')) route(); }, 2000);
  }).catch(function (e) { $('#signin-error').textContent = e.message; });
}

$('#signin').onsubmit = function (e) {
  e.preventDefault();
  state.token = $('#token').value.trim();
  api('GET', '/api/v1/whoami').then(function () { sessionStorage.setItem(TOKEN_KEY, state.token); start(); }).catch(function (err) { $('#signin-error').textContent = err.message; state.token = null; });
};
if (state.token) start();
`
