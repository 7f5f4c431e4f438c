// stratum1 status page: polls /api/status, /api/history and /api/log on this server and draws
// them. No libraries and no other origin: the page works on a network with nothing else on it.
'use strict';

const STATUS_EVERY_MS = 2000;
const HISTORY_EVERY_MS = 5000;
const TIERS = { fine: 720, coarse: 1440 }; // points kept per tier, as the server keeps them

const state = {
  status: null,
  prevStatus: null,
  hist: { fine: null, coarse: null, pps_histogram: null },
  hours: 24,
  lastOk: 0,
  lastHistory: 0,
};

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// ---- formatting -------------------------------------------------------------------------

function fmtSeconds(s, digits) {
  if (s === null || s === undefined || !isFinite(s)) return '–';
  const a = Math.abs(s);
  const d = digits === undefined ? 3 : digits;
  if (a === 0) return '0 s';
  if (a < 1e-6) return (s * 1e9).toPrecision(d) + ' ns';
  if (a < 1e-3) return (s * 1e6).toPrecision(d) + ' µs';
  if (a < 1) return (s * 1e3).toPrecision(d) + ' ms';
  return s.toPrecision(Math.max(d, 4)) + ' s';
}

function fmtDuration(s) {
  if (s === null || s === undefined || !isFinite(s)) return '–';
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d > 0) return d + ' d ' + h + ' h';
  if (h > 0) return h + ' h ' + String(m).padStart(2, '0') + ' min';
  if (m > 0) return m + ' min ' + String(s % 60).padStart(2, '0') + ' s';
  return s + ' s';
}

function fmtAge(s) {
  if (s === null || s === undefined || !isFinite(s)) return '–';
  return s < 10 ? s.toFixed(1) + ' s' : fmtDuration(s);
}

function fmtNumber(n, digits) {
  if (n === null || n === undefined || !isFinite(n)) return '–';
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits || 0 });
}

const LEAP = ['none', 'insert', 'delete', 'unsynchronised'];
const MARK = { selected: '*', candidate: '+', falseticker: 'x', unusable: '?', unreachable: '-' };

function kv(dl, rows) {
  dl.replaceChildren();
  for (const [k, v, cls] of rows) {
    const box = el('div');
    box.append(el('dt', {}, k), el('dd', cls ? { class: cls } : {}, v));
    if (dl.classList.contains('kv') && dl.parentElement.classList.contains('system')) dl.append(box);
    else dl.append(...box.childNodes);
  }
}

// The status JSON names one refclock today; accept a list too (several receivers).
function refclocks(s) {
  if (Array.isArray(s.refclocks)) return s.refclocks;
  return s.refclock ? [s.refclock] : [];
}

// ---- panels -----------------------------------------------------------------------------

function renderStatus() {
  const s = state.status;
  if (!s) return;
  $('#version').textContent = 'v' + s.version;
  const sys = s.system;
  const v = $('#verdict');
  if (sys.synchronised && sys.holdover) {
    v.className = 'verdict warn';
    v.textContent = 'Holdover';
  } else if (sys.synchronised) {
    v.className = 'verdict ok';
    v.textContent = 'Synchronised';
  } else {
    v.className = 'verdict bad';
    v.textContent = 'Not synchronised';
  }
  const dist = sys.root_delay_s / 2 + sys.root_dispersion_s;
  const rows = [
    ['stratum', sys.stratum >= 16 ? '16 (none)' : String(sys.stratum)],
    ['refid', sys.refid],
    ['leap', LEAP[sys.leap] || String(sys.leap)],
    ['root distance', sys.synchronised ? fmtSeconds(dist) : '–'],
    ['offset', fmtSeconds(sys.offset_s)],
    ['frequency', sys.frequency_ppm.toFixed(3) + ' ppm'],
    ['uptime', fmtDuration(s.uptime_s)],
  ];
  if (sys.holdover && sys.holdover_limit_s) rows.push(['holdover ends at', fmtSeconds(sys.holdover_limit_s)]);
  kv($('#system-kv'), rows);

  const rcs = refclocks(s);
  const recv = [];
  if (rcs.length === 0) recv.push(['receiver', 'none configured']);
  for (const r of rcs) {
    const fix = r.fix;
    const sats = fix ? [fix.satellites_used, fix.satellites_in_view] : [null, null];
    const age = r.last_pps_age_s;
    recv.push(
      ['device', r.description || '–'],
      ['fix', fix ? fix.mode : 'unknown', fix && fix.mode !== 'none' ? 'good' : 'warning'],
      ['satellites', (sats[0] ?? '–') + ' used / ' + (sats[1] ?? '–') + ' in view'],
      ['pairing', r.pairing || 'not learned yet'],
      ['last pulse', age === null || age === undefined ? 'none yet' : fmtAge(age) + ' ago',
        age !== null && age !== undefined && age < 3 ? 'good' : 'warning'],
      ['pulses', fmtNumber(r.pps_pulses) + ' (' + fmtNumber(r.pps_missed) + ' missed)'],
      ['sentences', fmtNumber(r.nmea_sentences) + ' (' + fmtNumber(r.nmea_checksum_errors) + ' bad checksums)'],
    );
  }
  kv($('#receiver-kv'), recv);

  const srv = s.server;
  const drops = Object.values(srv.dropped_by_reason || {}).reduce((a, b) => a + b, 0);
  const rate = (get) => {
    const p = state.prevStatus;
    if (!p || s.uptime_s <= p.uptime_s) return null;
    return (get(s) - get(p)) / (s.uptime_s - p.uptime_s);
  };
  const rps = rate((x) => x.server.answered);
  const kodps = rate((x) => x.server.kod);
  const reasons = Object.entries(srv.dropped_by_reason || {}).filter(([, n]) => n > 0)
    .map(([k, n]) => k + ' ' + fmtNumber(n)).join(', ');
  kv($('#server-kv'), [
    ['requests/s', rps === null ? '–' : fmtNumber(rps, 1)],
    ['answered', fmtNumber(srv.answered) + (srv.nts_answered ? ' (+ ' + fmtNumber(srv.nts_answered) + ' NTS)' : '')],
    ['KoD sent', fmtNumber(srv.kod) + (kodps ? ' (' + fmtNumber(kodps, 2) + '/s)' : ''), srv.kod > 0 ? 'warning' : ''],
    ['dropped', fmtNumber(drops) + (reasons ? ' (' + reasons + ')' : '')],
  ]);

  const tbody = $('#sources tbody');
  tbody.replaceChildren();
  for (const src of s.sources) {
    const tr = el('tr', { class: src.state, 'data-kind': src.kind },
      el('td', { class: 'state-' + src.state, title: src.state }, MARK[src.state] || ' '),
      el('td', {}, src.nts ? src.name + ' [NTS ' + src.nts.cookies + ']' : src.name),
      el('td', { class: 'opt' }, src.kind),
      el('td', {}, src.refid || ''),
      el('td', { class: 'num' }, src.stratum),
      el('td', { class: 'num opt' }, (src.reach >>> 0).toString(8)),
      el('td', { class: 'num' }, src.when_s === null || src.when_s === undefined ? '–' : fmtAge(src.when_s)),
      el('td', { class: 'num opt' }, fmtDuration(Math.pow(2, src.poll_log2 || 0))),
      el('td', { class: 'num' }, fmtSeconds(src.offset_s)),
      el('td', { class: 'num' }, fmtSeconds(src.jitter_s)),
      el('td', { class: 'num opt' }, src.kind === 'refclock' ? '–' : fmtSeconds(src.delay_s)));
    tbody.append(tr);
  }
  if (s.sources.length === 0) {
    tbody.append(el('tr', {}, el('td', { colspan: '11', class: 'muted' }, 'no sources configured')));
  }
}

function renderEvents(lines) {
  const ol = $('#events');
  ol.replaceChildren();
  for (const l of lines.slice().reverse()) {
    const t = new Date(l.t);
    const cls = l.level === 'ERROR' ? 'error' : l.level === 'WARN' ? 'warning' : 'muted';
    ol.append(el('li', { class: 'lvl-' + l.level.toLowerCase() },
      el('time', { datetime: t.toISOString(), title: t.toString() }, t.toLocaleTimeString()),
      el('span', { class: 'lvl ' + cls }, l.level),
      el('span', { class: 'msg' }, l.message)));
  }
  if (lines.length === 0) ol.append(el('li', { class: 'muted' }, 'nothing logged yet'));
}

// ---- history ----------------------------------------------------------------------------

// Appends the new columns of a tier to what the page has, keeping the server's bound.
function mergeTier(have, got, cap) {
  if (!have || got.id.length === 0) return have || got;
  for (const k of Object.keys(got)) {
    if (!Array.isArray(got[k])) continue;
    have[k] = have[k].concat(got[k]);
    if (have[k].length > cap) have[k] = have[k].slice(have[k].length - cap);
  }
  return have;
}

// One column series over the chosen range: coarse buckets before the fine ones begin.
function series(key, sinceMs) {
  const { fine, coarse } = state.hist;
  const x = [], y = [];
  const fineStart = fine && fine.t.length ? fine.t[0] : Infinity;
  if (coarse) {
    for (let i = 0; i < coarse.t.length; i++) {
      if (coarse.t[i] >= sinceMs && coarse.t[i] < fineStart) { x.push(coarse.t[i]); y.push(coarse[key][i]); }
    }
  }
  if (fine) {
    for (let i = 0; i < fine.t.length; i++) {
      if (fine.t[i] >= sinceMs) { x.push(fine.t[i]); y.push(fine[key][i]); }
    }
  }
  return { x, y };
}

// ---- drawing ----------------------------------------------------------------------------

function colors() {
  const cs = getComputedStyle(document.documentElement);
  const v = (n) => cs.getPropertyValue(n).trim();
  return { fg: v('--fg'), muted: v('--muted'), grid: v('--grid'), c1: v('--c1'), band: v('--c1-band'), c2: v('--c2'), c3: v('--c3') };
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

function setupCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(100, canvas.clientWidth), h = Math.max(80, canvas.clientHeight);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

// Draws lines (and an optional band) against time. Returns how many points were drawn.
function drawTimePlot(fig, lines, opts) {
  const canvas = fig.querySelector('canvas');
  const { ctx, w, h } = setupCanvas(canvas);
  const col = colors();
  const pad = { l: 62, r: 10, t: 8, b: 22 };
  const x0 = opts.from, x1 = opts.to;
  let lo = Infinity, hi = -Infinity, drawn = 0;
  for (const ln of lines) {
    for (const arr of [ln.y, ln.lo, ln.hi]) {
      if (!arr) continue;
      for (const v of arr) if (v !== null && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
  }
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = col.muted;
  if (!isFinite(lo)) {
    ctx.textAlign = 'center';
    ctx.fillText(opts.empty || 'no data yet', w / 2, h / 2);
    canvas.dataset.points = '0';
    return 0;
  }
  // With `zero`, the axis includes 0 and stops there when all values are on one side.
  if (opts.zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
  const minSpan = opts.minSpan || 1e-12;
  if (hi - lo < minSpan) {
    if (opts.zero && lo === 0) hi = minSpan;
    else if (opts.zero && hi === 0) lo = -minSpan;
    else { const m = (hi + lo) / 2; lo = m - minSpan / 2; hi = m + minSpan / 2; }
  }
  const margin = (hi - lo) * 0.08;
  if (!(opts.zero && lo === 0)) lo -= margin;
  if (!(opts.zero && hi === 0)) hi += margin;
  const px = (t) => pad.l + (t - x0) / (x1 - x0) * (w - pad.l - pad.r);
  const py = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (h - pad.t - pad.b);

  // Grid and labels.
  ctx.strokeStyle = col.grid; ctx.lineWidth = 1; ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
  const ys = niceStep(hi - lo, 4);
  for (let v = Math.ceil(lo / ys) * ys; v <= hi; v += ys) {
    const y = Math.round(py(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
    ctx.fillText(opts.fmt(Math.abs(v) < ys * 1e-6 ? 0 : v), pad.l - 4, y);
  }
  ctx.textAlign = 'center'; ctx.textBaseline = 'top';
  const spanMin = (x1 - x0) / 60000;
  const stepMin = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360].find((m) => spanMin / m <= Math.max(2, Math.floor((w - pad.l) / 70))) || 720;
  const step = stepMin * 60000;
  const tzOff = new Date().getTimezoneOffset() * 60000;
  for (let t = Math.ceil((x0 - tzOff) / step) * step + tzOff; t <= x1; t += step) {
    const x = Math.round(px(t)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, pad.t); ctx.lineTo(x, h - pad.b); ctx.stroke();
    const d = new Date(t);
    const label = String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
    // A label that would be cut at either edge is left out (its grid line stays).
    const half = ctx.measureText(label).width / 2;
    if (x - half >= 0 && x + half <= w) ctx.fillText(label, x, h - pad.b + 4);
  }

  ctx.save();
  ctx.beginPath(); ctx.rect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b); ctx.clip();
  for (const ln of lines) {
    // Band (min..max within each bucket), drawn per run of defined points.
    if (ln.lo && ln.hi) {
      ctx.fillStyle = ln.band;
      let run = [];
      const flush = () => {
        if (run.length > 0) {
          ctx.beginPath();
          run.forEach((i, k) => (k ? ctx.lineTo(px(ln.x[i]), py(ln.hi[i])) : ctx.moveTo(px(ln.x[i]), py(ln.hi[i]))));
          for (let k = run.length - 1; k >= 0; k--) ctx.lineTo(px(ln.x[run[k]]), py(ln.lo[run[k]]));
          ctx.closePath(); ctx.fill();
        }
        run = [];
      };
      for (let i = 0; i < ln.x.length; i++) {
        if (ln.lo[i] === null || ln.hi[i] === null) flush(); else run.push(i);
      }
      flush();
    }
    ctx.strokeStyle = ln.color; ctx.lineWidth = 1.5; ctx.setLineDash(ln.dash || []);
    ctx.beginPath();
    let pen = false, prevT = null;
    for (let i = 0; i < ln.x.length; i++) {
      const v = ln.y[i];
      // A gap in time (missing buckets) or a null breaks the line.
      const gap = prevT !== null && ln.x[i] - prevT > (opts.gapMs || Infinity);
      if (v === null || !isFinite(v)) { pen = false; prevT = ln.x[i]; continue; }
      const X = px(ln.x[i]), Y = py(v);
      if (!pen || gap) { ctx.moveTo(X, Y); ctx.lineTo(X + 0.5, Y); } else ctx.lineTo(X, Y);
      pen = true; prevT = ln.x[i]; drawn++;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.restore();
  canvas.dataset.points = String(drawn);
  return drawn;
}

function legend(fig, items) {
  const div = fig.querySelector('.legend');
  div.replaceChildren(...items.map(([cls, label, value]) => {
    const s = el('span', { class: cls }, label + ' ');
    s.append(el('b', {}, value));
    return s;
  }));
}

function lastDefined(arr) {
  for (let i = arr.length - 1; i >= 0; i--) if (arr[i] !== null && isFinite(arr[i])) return arr[i];
  return null;
}

function drawHistogram(fig, hgram) {
  const canvas = fig.querySelector('canvas');
  const { ctx, w, h } = setupCanvas(canvas);
  const col = colors();
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = col.muted;
  if (!hgram || !hgram.n) {
    ctx.textAlign = 'center';
    ctx.fillText('no PPS samples yet', w / 2, h / 2);
    canvas.dataset.points = '0';
    legend(fig, []);
    return;
  }
  const pad = { l: 40, r: 10, t: 8, b: 22 };
  const n = hgram.counts.length;
  const max = Math.max(1, ...hgram.counts);
  const bw = (w - pad.l - pad.r) / n;
  ctx.strokeStyle = col.grid; ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
  const ys = Math.max(1, niceStep(max, 3));
  for (let v = 0; v <= max; v += ys) {
    const y = Math.round(pad.t + (1 - v / max) * (h - pad.t - pad.b)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
    ctx.fillText(String(Math.round(v)), pad.l - 4, y);
  }
  ctx.fillStyle = col.c1;
  hgram.counts.forEach((c, i) => {
    const bh = c / max * (h - pad.t - pad.b);
    ctx.fillRect(pad.l + i * bw + 0.5, h - pad.b - bh, Math.max(1, bw - 1), bh);
  });
  ctx.fillStyle = col.muted; ctx.textBaseline = 'top';
  const lo = hgram.start_s, hi = hgram.start_s + hgram.width_s * n;
  ctx.textAlign = 'left'; ctx.fillText(fmtSeconds(lo, 2), pad.l, h - pad.b + 4);
  ctx.textAlign = 'right'; ctx.fillText(fmtSeconds(hi, 2), w - pad.r, h - pad.b + 4);
  canvas.dataset.points = String(hgram.counts.filter((c) => c > 0).length);
  legend(fig, [
    ['c1', 'n', fmtNumber(hgram.n)],
    ['c1', 'mean', fmtSeconds(hgram.mean_s)],
    ['c1', 'sd', fmtSeconds(hgram.sd_s)],
    ['c1', 'outside', fmtNumber(hgram.below + hgram.above)],
  ]);
}

function renderPlots() {
  if (!state.hist.fine) return;
  const col = colors();
  // The chosen range, or less while the history is shorter (at least two minutes).
  const to = Date.now();
  const first = [state.hist.coarse, state.hist.fine].filter((t) => t && t.t.length).map((t) => t.t[0]);
  const from = Math.min(to - 120000, Math.max(to - state.hours * 3600000, Math.min(...first, to) - 5000));
  // Break lines where more than two buckets are missing (the daemon was stopped, say).
  const gapMs = (state.hours <= 1 ? 5 : 60) * 3000;
  const at = (key) => series(key, from);
  const off = at('offset'), offLo = at('offset_min'), offHi = at('offset_max'), jit = at('jitter');
  const fmtS = (v) => fmtSeconds(v, 2);
  const fig = (id) => document.getElementById(id);

  drawTimePlot(fig('plot-offset'), [
    { x: off.x, y: off.y, lo: offLo.y, hi: offHi.y, color: col.c1, band: col.band },
    { x: jit.x, y: jit.y, color: col.c2, dash: [4, 3] },
  ], { from, to, fmt: fmtS, gapMs, zero: true, empty: 'no source selected yet' });
  legend(fig('plot-offset'), [['c1', 'offset', fmtSeconds(lastDefined(off.y))], ['c2', 'jitter', fmtSeconds(lastDefined(jit.y))]]);

  const fr = at('frequency');
  drawTimePlot(fig('plot-frequency'), [{ x: fr.x, y: fr.y, color: col.c1 }],
    { from, to, fmt: (v) => v.toFixed(Math.abs(v) < 1 ? 3 : 2), gapMs, minSpan: 0.002 });
  const lf = lastDefined(fr.y);
  legend(fig('plot-frequency'), [['c1', 'ppm', lf === null ? '–' : lf.toFixed(3)]]);

  const rd = at('root_distance');
  drawTimePlot(fig('plot-distance'), [{ x: rd.x, y: rd.y, color: col.c3 }], { from, to, fmt: fmtS, gapMs, zero: true, empty: 'not synchronised yet' });
  legend(fig('plot-distance'), [['c3', 'root distance', fmtSeconds(lastDefined(rd.y))]]);

  const rq = at('requests');
  drawTimePlot(fig('plot-requests'), [{ x: rq.x, y: rq.y, color: col.c1 }], { from, to, fmt: (v) => fmtNumber(v, 1), gapMs, zero: true, minSpan: 1 });
  legend(fig('plot-requests'), [['c1', 'req/s', fmtNumber(lastDefined(rq.y), 1)]]);

  const su = at('used'), sv = at('in_view');
  drawTimePlot(fig('plot-satellites'), [
    { x: sv.x, y: sv.y, color: col.c2 },
    { x: su.x, y: su.y, color: col.c1 },
  ], { from, to, fmt: (v) => fmtNumber(v, 0), gapMs, zero: true, minSpan: 4, empty: 'the receiver has not said' });
  legend(fig('plot-satellites'), [['c1', 'used', fmtNumber(lastDefined(su.y))], ['c2', 'in view', fmtNumber(lastDefined(sv.y))]]);

  drawHistogram(fig('plot-histogram'), state.hist.pps_histogram);
}

// ---- polling ----------------------------------------------------------------------------

async function getJson(path) {
  const r = await fetch(path, { cache: 'no-store' });
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}

function setOnline(ok) {
  $('#offline').hidden = ok;
  if (ok) state.lastOk = Date.now();
}

async function pollStatus() {
  try {
    const s = await getJson('/api/status');
    state.prevStatus = state.status;
    state.status = s;
    setOnline(true);
    renderStatus();
  } catch (e) {
    setOnline(false);
  }
}

async function pollHistory() {
  try {
    const h = state.hist;
    const q = h.fine && h.coarse && h.fine.id.length && h.coarse.id.length
      ? '?fine=' + h.fine.id[h.fine.id.length - 1] + '&coarse=' + h.coarse.id[h.coarse.id.length - 1]
      : '';
    const [got, log] = await Promise.all([getJson('/api/history' + q), getJson('/api/log?n=40')]);
    // A cursor only when both tiers had points; otherwise the reply is the whole history.
    if (q) {
      h.fine = mergeTier(h.fine, got.fine, TIERS.fine);
      h.coarse = mergeTier(h.coarse, got.coarse, TIERS.coarse);
    } else {
      h.fine = got.fine;
      h.coarse = got.coarse;
    }
    h.pps_histogram = got.pps_histogram;
    state.lastHistory = Date.now();
    setOnline(true);
    renderPlots();
    renderEvents(log);
  } catch (e) {
    setOnline(false);
  }
}

function tickLabel() {
  const u = $('#updated');
  if (!state.lastOk) return;
  const ago = (Date.now() - state.lastOk) / 1000;
  u.textContent = 'updated ' + (ago < 2 ? 'just now' : Math.round(ago) + ' s ago');
}

function start() {
  for (const b of document.querySelectorAll('#range button')) {
    b.addEventListener('click', () => {
      state.hours = Number(b.dataset.hours);
      for (const o of document.querySelectorAll('#range button')) o.classList.toggle('on', o === b);
      renderPlots();
    });
  }
  let resize = null;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = setTimeout(renderPlots, 150);
  });
  const loop = (fn, ms) => { fn().finally(() => setTimeout(() => loop(fn, ms), ms)); };
  loop(pollStatus, STATUS_EVERY_MS);
  loop(pollHistory, HISTORY_EVERY_MS);
  setInterval(tickLabel, 1000);
}

start();
