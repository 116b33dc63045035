// qoe-stream live page: renders LiveSnapshot events from /v1/live/stream (live/snapshot.ts) and polls
// the steering endpoints. No framework, no dependency; every value goes in through textContent.

const STREAM_URL = new URL('../v1/live/stream', location.href);
const STEERING_URL = new URL('../v1/steering/', location.href);
const STEERING_POLL_MS = 5000;
const STEERING_ABSENT_POLL_MS = 60000;
const SVG = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};

const fmt = {
  count: (v) => (v === null ? '–' : Math.round(v).toLocaleString('en-US')),
  decimal: (v) => (v === null ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: 1 })),
  pct: (v) => (v === null ? '–' : `${(100 * v).toFixed(v < 0.001 && v > 0 ? 3 : 2)} %`),
  ms: (v) => (v === null ? '–' : v >= 10000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v).toLocaleString('en-US')} ms`),
  kbps: (v) => (v === null ? '–' : v >= 1000 ? `${(v / 1000).toFixed(2)} Mbps` : `${Math.round(v)} kbps`),
  age: (ms) => {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  },
  time: (ms) => new Date(ms).toISOString().slice(11, 19) + 'Z',
};

const PANELS = [
  ['attempts', 'attempts', fmt.count],
  ['plays', 'plays', fmt.count],
  ['concurrentSessions', 'concurrent sessions', fmt.decimal],
  ['vstP50Ms', 'VST p50', fmt.ms],
  ['vstP95Ms', 'VST p95', fmt.ms],
  ['rebufferRatio', 'rebuffer ratio', fmt.pct],
  ['connectionRebufferRatio', 'connection rebuffer ratio', fmt.pct],
  ['avgBitrateKbps', 'avg bitrate', fmt.kbps],
  ['vsfRate', 'VSF rate', fmt.pct],
  ['ebvsRate', 'EBVS rate', fmt.pct],
  ['vpfRate', 'VPF rate', fmt.pct],
];

const state = { snapshot: null, clockOffsetMs: 0, receivedAt: 0 };
const serverNow = () => Date.now() + state.clockOffsetMs;

function buildPanels() {
  const root = $('panels');
  for (const [key, label] of PANELS) {
    const panel = el('div', { class: 'panel', id: `panel-${key}` });
    panel.append(el('div', { class: 'name' }, label), el('div', { class: 'value', id: `h-${key}` }, '–'));
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 200 36');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('id', `spark-${key}`);
    panel.append(svg);
    root.append(panel);
  }
}

/** Inline SVG sparkline; null values break the line; the not-yet-closed part is shaded. */
function sparkline(svg, startMs, values, stepMs, closedUntilMs, format) {
  svg.replaceChildren();
  const n = values.length;
  if (n === 0) return;
  const W = 200, H = 36, pad = 3;
  const nums = values.filter((v) => v !== null);
  const max = nums.length ? Math.max(...nums) : 1;
  const min = Math.min(0, ...nums);
  const span = max - min || 1;
  const x = (i) => (n === 1 ? W / 2 : (i / (n - 1)) * W);
  const y = (v) => H - pad - ((v - min) / span) * (H - 2 * pad);
  const from = startMs[0];
  const to = startMs[n - 1] + stepMs;
  if (closedUntilMs === null || closedUntilMs < to) {
    const openFrom = closedUntilMs === null ? from : Math.max(from, closedUntilMs);
    const rx = ((openFrom - from) / (to - from)) * W;
    const rect = document.createElementNS(SVG, 'rect');
    for (const [k, v] of [['x', rx], ['y', 0], ['width', W - rx], ['height', H], ['class', 'spark-open']]) rect.setAttribute(k, String(v));
    svg.append(rect);
  }
  let d = '';
  let pen = false;
  let last = -1;
  values.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)} `;
    pen = true;
    last = i;
  });
  if (d !== '') {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d.trim());
    path.setAttribute('class', 'spark-line');
    svg.append(path);
  }
  if (last >= 0) {
    const dot = document.createElementNS(SVG, 'circle');
    for (const [k, v] of [['cx', x(last)], ['cy', y(values[last])], ['r', 2], ['class', 'spark-dot']]) dot.setAttribute(k, String(v));
    svg.append(dot);
  }
  const title = document.createElementNS(SVG, 'title');
  title.textContent = `${fmt.time(from)} – ${fmt.time(to)}, ${stepMs / 1000} s buckets; min ${format(nums.length ? Math.min(...nums) : null)}, max ${format(nums.length ? max : null)}`;
  svg.append(title);
}

function renderFreshness() {
  const s = state.snapshot;
  if (!s) return;
  const box = $('freshness');
  const last = s.freshness.lastWindowEndMs;
  if (last === null) {
    box.dataset.state = 'none';
    $('freshness-text').textContent = 'no window stored in the last 24 h';
    $('freshness-detail').textContent = '';
  } else {
    const age = serverNow() - last;
    box.dataset.state = age > s.staleAfterMs ? 'stale' : 'fresh';
    $('freshness-text').textContent = `last window closed ${fmt.age(age)} ago`;
    $('freshness-detail').textContent = `${age > s.staleAfterMs ? 'STALE · ' : ''}window ${fmt.time(last - s.windowMs)}–${fmt.time(last)}`;
  }
  const conn = $('connection');
  if (conn.dataset.state === 'live' && Date.now() - state.receivedAt > 3 * 15000) {
    conn.dataset.state = 'lost';
    conn.textContent = 'no update for 45 s';
  }
}

function renderHeadline(s) {
  const h = $('h-headline');
  h.dataset.fromMs = String(s.headline.fromMs);
  h.dataset.toMs = String(s.headline.toMs);
  $('headline-range').textContent = `last ${Math.round((s.headline.toMs - s.headline.fromMs) / 60000)} min, to ${fmt.time(s.headline.toMs)} · sparklines: last ${Math.round((s.series.toMs - s.series.fromMs) / 60000)} min`;
  for (const [key, , format] of PANELS) {
    const v = s.headline.metrics[key];
    const node = $(`h-${key}`);
    node.textContent = format(v);
    node.dataset.value = v === null ? '' : String(v);
    sparkline($(`spark-${key}`), s.series.startMs, s.series.values[key], s.series.stepMs, s.freshness.lastWindowEndMs, format);
  }
}

function renderTable(s) {
  const t = s.table;
  const th = t.thresholds;
  $('table-range').textContent = `${fmt.time(t.fromMs)}–${fmt.time(t.toMs)}`;
  $('table-legend').textContent = `highlighted: rebuffer ratio > ${fmt.pct(th.rebufferRatio)}, VSF rate > ${fmt.pct(th.vsfRate)}, VST p95 > ${fmt.ms(th.vstP95Ms)}, or over ${th.relativeFactor}× all traffic; rows under ${th.minAttempts} attempts never highlighted${t.truncated ? ` · ${t.truncated} smaller rows not shown` : ''}`;
  const body = $('cdn-table').tBodies[0];
  body.replaceChildren(...t.rows.map((r) => {
    const tr = el('tr', { 'data-cdn': r.cdn, 'data-country': r.country });
    tr.append(el('td', {}, r.cdn || '(none)'), el('td', {}, r.country || '(none)'));
    for (const [key, format] of [['attempts', fmt.count], ['rebufferRatio', fmt.pct], ['vsfRate', fmt.pct], ['vstP95Ms', fmt.ms]]) {
      const bad = r.bad.includes(key);
      tr.append(el('td', { class: bad ? 'num bad' : 'num', 'data-metric': key, ...(bad && { title: 'over the threshold' }) }, format(r[key])));
    }
    return tr;
  }));
  $('table-empty').hidden = t.rows.length > 0;
}

function render(s) {
  state.snapshot = s;
  state.receivedAt = Date.now();
  state.clockOffsetMs = s.generatedAtMs - Date.now();
  renderHeadline(s);
  renderTable(s);
  renderFreshness();
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

function connect() {
  const conn = $('connection');
  const es = new EventSource(STREAM_URL);
  es.addEventListener('open', () => { conn.dataset.state = 'live'; conn.textContent = 'live'; });
  es.addEventListener('snapshot', (e) => {
    conn.dataset.state = 'live';
    conn.textContent = 'live';
    render(JSON.parse(e.data));
  });
  es.addEventListener('query-error', () => {
    conn.dataset.state = 'error';
    conn.textContent = 'metrics query failing: showing the last snapshot';
  });
  // The browser reconnects by itself (the server sends `retry:`).
  es.addEventListener('error', () => { conn.dataset.state = 'lost'; conn.textContent = 'reconnecting…'; });
}

// ---- steering ----

function steeringToken() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) sessionStorage.setItem('qoe-steering-token', fromHash);
  return fromHash || sessionStorage.getItem('qoe-steering-token') || '';
}

async function steeringGet(path) {
  const token = steeringToken();
  const res = await fetch(new URL(path, STEERING_URL), { headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: 'no-store' });
  return { status: res.status, body: res.ok ? await res.json() : null };
}

function steeringNote(text) {
  const note = $('steering-note');
  note.hidden = text === null;
  note.textContent = text ?? '';
}

function renderKillSwitch(ks) {
  const box = $('kill-switch');
  box.hidden = false;
  box.dataset.state = ks.enabled ? 'on' : 'off';
  box.textContent = `kill switch ${ks.enabled ? 'ON: steering suspended, neutral priority everywhere' : 'off'} · by ${ks.actor} · ${fmt.age(serverNow() - ks.changedAtMs)} ago`;
}

function renderDecisions(body) {
  const list = [...body.decisions].sort((a, b) => b.seq - a.seq);
  const table = $('decisions');
  table.hidden = list.length === 0;
  $('decisions-empty').hidden = list.length > 0;
  table.tBodies[0].replaceChildren(...list.map((d) => {
    const tr = el('tr', { 'data-seq': String(d.seq) });
    const r = d.reason;
    tr.append(
      el('td', { class: 'num' }, String(d.seq)),
      el('td', { title: new Date(d.issuedAtMs).toISOString() }, `${fmt.age(serverNow() - d.issuedAtMs)} ago`),
      el('td', {}, d.scope.asn ? `${d.scope.country} / AS${d.scope.asn}` : d.scope.country),
      el('td', { class: `action-${d.action}` }, d.action),
      el('td', {}, d.priority.join(' › ')),
      el('td', {}, r.metric === 'operator' ? r.detail : `${r.cdn} ${r.metric} ${r.value.toPrecision(3)} vs ${r.baseline.toPrecision(3)}${r.detail ? ` (${r.detail})` : ''}`),
    );
    return tr;
  }));
}

async function pollSteering() {
  let next = STEERING_POLL_MS;
  try {
    const ks = await steeringGet('kill-switch');
    if (ks.status === 404) {
      steeringNote('steering not enabled on this deployment');
      $('kill-switch').hidden = true;
      $('decisions').hidden = true;
      $('decisions-empty').hidden = true;
      next = STEERING_ABSENT_POLL_MS;
    } else if (ks.status === 401 || ks.status === 403) {
      steeringNote('steering needs a read token: open this page as /live/#token=<token>');
    } else if (ks.body) {
      renderKillSwitch(ks.body);
      const dec = await steeringGet('decisions');
      if (dec.body) {
        steeringNote(null);
        renderDecisions(dec.body);
      } else {
        steeringNote(`steering decisions unavailable (HTTP ${dec.status})`);
      }
    } else {
      steeringNote(`steering unavailable (HTTP ${ks.status})`);
    }
  } catch {
    steeringNote('steering unreachable');
  }
  setTimeout(pollSteering, next);
}

buildPanels();
connect();
void pollSteering();
setInterval(renderFreshness, 1000);
