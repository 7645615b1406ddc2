// Flux live dashboard: its constants and the formatting, /stats access and
// DOM helpers app.js and charts.js share. Classic scripts loaded in order
// (format.js, charts.js, app.js: index.html): top-level declarations here
// are visible to the later ones, and nothing else is global.
//
// Plain ES2020, no framework, no build step: this file is embedded verbatim.
'use strict';

const POLL_MS = 1000;
const CONNECTIONS_POLL_MS = 2000;
const FETCH_TIMEOUT_MS = 2500;
const WINDOW_S = 300;
// Samples further apart than this are drawn with a gap between them.
const GAP_S = 3.5;
const CHART_HEIGHT = 190;

const COLORS = {
  blue: '#4ea1ff',
  green: '#3ddc97',
  amber: '#ffb547',
  red: '#ff6b6b',
  purple: '#b48cff',
  cyan: '#4dd0e1',
  grey: '#8b95a5',
};
// The loop's activities (docs/stats.md), stacked bottom-up; poll on top.
const ACTIVITIES = [
  ['read', COLORS.blue],
  ['write', COLORS.green],
  ['timer', COLORS.amber],
  ['accept', COLORS.cyan],
  ['task', COLORS.purple],
  ['tick', '#d4d46a'],
  ['session', '#ff9ecb'],
  ['reap', COLORS.red],
  ['shutdown', '#ffffff'],
  ['store', '#7fd1b9'],
  ['poll', COLORS.grey],
];
const AXIS_STROKE = '#8b95a5';
const GRID_STROKE = 'rgba(255,255,255,0.06)';

// ---------------------------------------------------------------- format

// Each formatter returns [number-text, unit] so the big numbers can style
// the unit; fmt() joins them for tables and axes.
function splitDuration(seconds) {
  if (seconds == null || !isFinite(seconds)) return ['–', ''];
  const a = Math.abs(seconds);
  if (a === 0) return ['0', 's'];
  if (a < 1e-6) return [sig(seconds * 1e9), 'ns'];
  if (a < 1e-3) return [sig(seconds * 1e6), 'µs'];
  if (a < 1) return [sig(seconds * 1e3), 'ms'];
  return [sig(seconds), 's'];
}

function splitBytes(bytes) {
  if (bytes == null || !isFinite(bytes)) return ['–', ''];
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return [i === 0 ? String(Math.round(v)) : sig(v), units[i]];
}

function splitCount(n) {
  if (n == null || !isFinite(n)) return ['–', ''];
  const a = Math.abs(n);
  if (a >= 1e9) return [sig(n / 1e9), 'G'];
  if (a >= 1e6) return [sig(n / 1e6), 'M'];
  if (a >= 1e4) return [sig(n / 1e3), 'k'];
  if (Number.isInteger(n)) return [String(n), ''];
  return [a >= 100 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : n.toFixed(2), ''];
}

function splitPercent(p) {
  if (p == null || !isFinite(p)) return ['–', ''];
  return [p >= 100 ? p.toFixed(0) : p.toFixed(1), '%'];
}

// Three significant digits, without exponent notation.
function sig(v) {
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

// "10.0 ms" -> "10 ms", "1.50 MiB" -> "1.5 MiB": for axis ticks.
const trimZeros = (text) => text.replace(/(\.\d*?)0+(?!\d)/, '$1').replace(/\.(?!\d)/, '');

const join = ([n, u]) => (u === '' ? n : u === '%' ? n + u : `${n} ${u}`);
const fmtDuration = (s) => join(splitDuration(s));
const fmtBytes = (b) => join(splitBytes(b));
const fmtCount = (n) => join(splitCount(n));
const fmtPercent = (p) => join(splitPercent(p));

function fmtUptime(seconds) {
  if (seconds == null || !isFinite(seconds)) return '–';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  let s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const pad = (x) => String(x).padStart(2, '0');
  if (d > 0) return `${d}d ${pad(h)}h ${pad(m)}m`;
  if (h > 0) return `${h}h ${pad(m)}m ${pad(s)}s`;
  return `${m}m ${pad(s)}s`;
}

// ------------------------------------------------------------ /stats access

// Reads a dotted path from an object; null when any step is missing or the
// leaf is not a finite number. Keeps the page alive on partial payloads.
function num(obj, path) {
  let v = obj;
  for (const key of path.split('.')) {
    if (v == null || typeof v !== 'object') return null;
    v = v[key];
  }
  return typeof v === 'number' && isFinite(v) ? v : null;
}

const rate1s = (block, key) => num(block, `rates.1s.${key}`);
const p99Last1s = (block, hist) => num(block, `latency_seconds.${hist}.last_1s.p99`);

// ------------------------------------------------------------------ DOM

const $ = (id) => document.getElementById(id);

function setText(id, text) {
  const el = $(id);
  if (el && el.textContent !== text) el.textContent = text;
}

// A big number: value plus a smaller unit, and the raw value for tests.
function setBig(id, [n, unit], raw) {
  const el = $(id);
  el.dataset.raw = raw == null ? '' : String(raw);
  el.replaceChildren(document.createTextNode(n));
  if (unit) {
    const u = document.createElement('span');
    u.className = 'unit';
    u.textContent = unit;
    el.append(u);
  }
}

function cell(text, cls) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  td.textContent = text;
  return td;
}

function barCell(fraction, label) {
  const td = document.createElement('td');
  td.className = 'share';
  const bar = document.createElement('div');
  bar.className = 'bar';
  const fill = document.createElement('div');
  fill.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  bar.append(fill);
  const text = document.createElement('span');
  text.textContent = label;
  td.append(bar, text);
  return td;
}

function messageRow(tbody, colspan, text) {
  const tr = document.createElement('tr');
  const td = cell(text, 'muted');
  td.colSpan = colspan;
  tr.append(td);
  tbody.replaceChildren(tr);
}
