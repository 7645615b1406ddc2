// Flux live dashboard.
//
// Polls GET /stats every second (contract: docs/stats.md) and
// GET /connections every 2 s, keeps the last 5 minutes in memory and draws
// them with uPlot (served by the gateway at /uPlot.iife.min.js).
//
// Test hooks (tests/dashboard/browser_test.sh):
//   - document.body.dataset.updates: number of successful /stats updates;
//   - #ready-connections, #frames-in-rate, #echo-p99, #loop-lag-p99,
//     #cpu-percent, #rss, #uptime carry data-raw = the raw /stats value.
//
// Plain ES2020, no framework, no build step: this file is embedded verbatim.
'use strict';

(() => {
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

  // ---------------------------------------------------------------- charts

  // One time-series card. `columns` are extractors stats -> number|null, one
  // per series; history is kept here as uPlot's column arrays.
  class TimeChart {
    constructor(elementId, { series, axes, scales, columns, transform }) {
      this.el = $(elementId);
      this.columns = columns;
      this.transform = transform || ((data) => ({ data }));
      this.raw = [[], ...columns.map(() => [])];
      const opts = {
        width: this.width(),
        height: CHART_HEIGHT,
        series: [{ label: 'time', value: '{HH}:{mm}:{ss}' }, ...series.map((o) => this.withRawLegend(o))],
        axes: axes || [xAxis(), yAxis(fmtCount)],
        scales: { x: { time: true, range: xRange }, ...(scales || { y: { range: zeroBased } }) },
        cursor: { sync: { key: 'flux' }, drag: { x: false, y: false }, points: { size: 6 } },
        legend: { live: true },
        hooks: { setLegend: [(u) => this.showLatestInLegend(u)] },
      };
      const { data, bands } = this.transform(this.raw);
      if (bands) opts.bands = bands;
      this.u = new uPlot(opts, data, this.el);
      new ResizeObserver(() => this.resize()).observe(this.el);
    }

    // A series with `rawFormat` shows the raw (unstacked, untransformed)
    // value in the legend rather than the plotted one.
    withRawLegend(o) {
      if (!o.rawFormat) return o;
      const { rawFormat, ...rest } = o;
      return { ...rest, value: (u, v, si, idx) => fmtOrDash(idx == null ? null : this.raw[si][idx], rawFormat) };
    }

    width() {
      return Math.max(240, Math.floor(this.el.clientWidth));
    }

    resize() {
      const w = this.width();
      if (w !== this.u.width) this.u.setSize({ width: w, height: CHART_HEIGHT });
    }

    // Appends one sample at time t; `gap` first inserts a null row so the
    // lines break over an outage or a gateway restart.
    push(t, stats, gap) {
      if (gap && this.raw[0].length > 0) this.appendRow(t - 0.001, this.columns.map(() => null));
      this.appendRow(t, this.columns.map((f) => f(stats)));
      const oldest = t - WINDOW_S;
      let drop = 0;
      while (drop < this.raw[0].length && this.raw[0][drop] < oldest) drop++;
      if (drop > 0) this.raw.forEach((col) => col.splice(0, drop));
      const { data } = this.transform(this.raw);
      this.u.setData(data);
    }

    // Forgets the history (the server clock went backwards).
    clear() {
      this.raw.forEach((col) => col.splice(0));
      this.u.setData(this.transform(this.raw).data);
    }

    appendRow(t, values) {
      this.raw[0].push(t);
      values.forEach((v, i) => this.raw[i + 1].push(v));
    }

    // With the cursor off the plot the legend shows the newest sample
    // instead of "--": the legend doubles as the "current value" readout.
    showLatestInLegend(u) {
      const last = u.data[0].length - 1;
      const hovering = u.cursor.left != null && u.cursor.left >= 0;
      if (!hovering && last >= 0 && u.legend.idx !== last) u.setLegend({ idx: last }, false);
    }
  }

  function xRange(u, min, max) {
    const now = max ?? Date.now() / 1000;
    return [now - WINDOW_S, now];
  }

  function zeroBased(u, min, max) {
    if (max == null || max <= 0) return [0, 1];
    return [0, uPlot.rangeNum(0, max, 0.1, true)[1]];
  }

  // Wall-clock ticks in 24 h local time; seconds only when ticks are closer
  // than a minute.
  function clockTicks(u, splits, axisIdx, space, incr) {
    const pad = (x) => String(x).padStart(2, '0');
    return splits.map((t) => {
      const d = new Date(t * 1000);
      const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
      return incr >= 60 ? hm : `${hm}:${pad(d.getSeconds())}`;
    });
  }

  function xAxis() {
    return {
      values: clockTicks,
      stroke: AXIS_STROKE,
      grid: { stroke: GRID_STROKE, width: 1 },
      ticks: { stroke: GRID_STROKE, width: 1 },
      space: 55,
    };
  }

  function yAxis(format, extra) {
    return {
      stroke: AXIS_STROKE,
      grid: { stroke: GRID_STROKE, width: 1 },
      ticks: { stroke: GRID_STROKE, width: 1 },
      size: 64,
      values: (u, splits) => splits.map((v) => (v == null ? '' : trimZeros(format(v)))),
      ...extra,
    };
  }

  function line(label, color, format, extra) {
    return {
      label,
      stroke: color,
      width: 1.5,
      points: { show: false },
      value: (u, v) => (v == null ? '–' : format(v)),
      ...extra,
    };
  }

  // Stacks the value columns bottom-up (series 1 at the bottom) and returns
  // the bands that fill between neighbours, as uPlot's stacking demo does.
  function stacked(raw) {
    const acc = raw[0].map(() => 0);
    const data = [raw[0]];
    for (let s = 1; s < raw.length; s++) {
      data.push(raw[s].map((v, i) => (v == null ? null : (acc[i] += v))));
    }
    const bands = [];
    for (let s = 1; s + 1 < raw.length; s++) bands.push({ series: [s + 1, s] });
    return { data, bands };
  }

  // Log scales cannot show 0 (an empty histogram window): drop such points.
  const positiveOnly = (raw) => ({ data: raw.map((col, i) => (i === 0 ? col : col.map((v) => (v > 0 ? v : null)))) });

  function alpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`;
  }

  function makeCharts() {
    const charts = [];
    const connColumns = ['handshake', 'ready', 'closing'];
    const connColors = [COLORS.amber, COLORS.green, COLORS.red];
    charts.push(new TimeChart('chart-connections', {
      columns: connColumns.map((k) => (s) => num(s, `total.connections.by_state.${k}`)),
      transform: stacked,
      series: connColumns.map((k, i) =>
        line(k, connColors[i], fmtCount, {
          fill: alpha(connColors[i], 0.35),
          rawFormat: fmtCount,
        }),
      ),
    }));

    charts.push(
      new TimeChart('chart-frames', {
        columns: [(s) => rate1s(s.total, 'frames_in'), (s) => rate1s(s.total, 'frames_out')],
        series: [
          line('in', COLORS.blue, fmtCount, { fill: alpha(COLORS.blue, 0.08) }),
          line('out', COLORS.green, fmtCount, { dash: [6, 3] }),
        ],
      }),
    );

    charts.push(new TimeChart('chart-loop', {
      columns: [(s) => p99Last1s(s.total, 'loop_lag'), (s) => p99Last1s(s.total, 'poll_wait')],
      transform: positiveOnly,
      series: [
        line('loop lag p99', COLORS.amber, fmtDuration, { rawFormat: fmtDuration }),
        line('poll wait p99', COLORS.cyan, fmtDuration, { rawFormat: fmtDuration }),
      ],
      scales: { y: { distr: 3, log: 10 } },
      axes: [xAxis(), yAxis(fmtDuration)],
    }));

    charts.push(new TimeChart('chart-profile', {
      columns: ACTIVITIES.map(([k]) => (s) => {
        const share = num(s, `total.profile.1s.share.${k}`);
        return num(s, 'total.profile.1s.samples') > 0 && share != null ? share * 100 : null;
      }),
      transform: stacked,
      series: ACTIVITIES.map(([k, c]) =>
        line(k, c, fmtPercent, { fill: alpha(c, k === 'poll' ? 0.08 : 0.4), rawFormat: fmtPercent }),
      ),
      scales: { y: { range: () => [0, 100] } },
      axes: [xAxis(), yAxis(fmtPercent)],
    }));

    const echoKeys = [
      ['p50', COLORS.green],
      ['p90', COLORS.blue],
      ['p99', COLORS.amber],
      ['p999', COLORS.red],
    ];
    charts.push(
      new TimeChart('chart-echo', {
        columns: echoKeys.map(([k]) => (s) => num(s, `total.latency_seconds.echo_latency.last_1s.${k}`)),
        series: echoKeys.map(([k, c]) => line(k, c, fmtDuration)),
        axes: [xAxis(), yAxis(fmtDuration)],
      }),
    );

    charts.push(
      new TimeChart('chart-buffers', {
        columns: [
          (s) => rate1s(s.total, 'buffer_allocations'),
          (s) => num(s, 'total.pool.block_bytes_in_use'),
          (s) => num(s, 'total.pool.block_bytes_free'),
        ],
        series: [
          line('allocations /s', COLORS.purple, fmtCount, { width: 2 }),
          line('in use', COLORS.blue, fmtBytes, { scale: 'bytes', fill: alpha(COLORS.blue, 0.1) }),
          line('free', COLORS.grey, fmtBytes, { scale: 'bytes', dash: [4, 3] }),
        ],
        scales: { y: { range: zeroBased }, bytes: { range: zeroBased } },
        axes: [
          xAxis(),
          yAxis(fmtCount, { stroke: COLORS.purple }),
          yAxis(fmtBytes, { scale: 'bytes', side: 1, grid: { show: false }, size: 72 }),
        ],
      }),
    );

    charts.push(
      new TimeChart('chart-ctx', {
        columns: [
          (s) => rate1s(s.total, 'context_switches_voluntary'),
          (s) => rate1s(s.total, 'context_switches_involuntary'),
        ],
        series: [line('voluntary', COLORS.blue, fmtCount), line('involuntary', COLORS.red, fmtCount)],
      }),
    );

    charts.push(
      new TimeChart('chart-process', {
        columns: [(s) => num(s, 'process.cpu_percent_1s'), (s) => num(s, 'process.resident_memory_bytes')],
        series: [
          line('CPU', COLORS.amber, fmtPercent, { fill: alpha(COLORS.amber, 0.08) }),
          line('RSS', COLORS.purple, fmtBytes, { scale: 'bytes' }),
        ],
        scales: { y: { range: zeroBased }, bytes: { range: zeroBased } },
        axes: [
          xAxis(),
          yAxis(fmtPercent, { stroke: COLORS.amber }),
          yAxis(fmtBytes, { scale: 'bytes', side: 1, grid: { show: false }, size: 72, stroke: COLORS.purple }),
        ],
      }),
    );
    return charts;
  }

  const fmtOrDash = (v, format) => (v == null ? '–' : format(v));

  // ------------------------------------------------------------- rendering

  function renderHeader(s) {
    const t = s.total;
    setText('version', s.version ? `v${s.version}` : 'v?');
    const node = num(s, 'node');
    setText('node', node == null ? 'node ?' : `node ${node} (${node.toString(16).padStart(4, '0')})`);
    setBig('uptime', [fmtUptime(num(s, 'uptime_seconds')), ''], num(s, 'uptime_seconds'));
    setText('reactor-count', Array.isArray(s.reactors) ? String(s.reactors.length) : '–');
    const fds = num(s, 'process.open_fds');
    const maxFds = num(s, 'process.max_fds');
    setText('fds', fds == null ? '–' : `${fds} / ${fmtCount(maxFds)}`);
    setText('threads', fmtOrDash(num(s, 'process.threads'), String));

    const ready = num(t, 'connections.by_state.ready');
    setBig('ready-connections', splitCount(ready), ready);
    setText(
      'ready-sub',
      `${fmtOrDash(num(t, 'connections.open'), fmtCount)} open · ` +
        `${fmtOrDash(num(t, 'connections.by_state.handshake'), fmtCount)} in handshake`,
    );

    const fin = rate1s(t, 'frames_in');
    setBig('frames-in-rate', splitCount(fin), fin);
    setText(
      'frames-sub',
      `out ${fmtOrDash(rate1s(t, 'frames_out'), fmtCount)}/s · ` +
        `${fmtOrDash(rate1s(t, 'bytes_in'), fmtBytes)}/s in`,
    );

    const echo = p99Last1s(t, 'echo_latency');
    setBig('echo-p99', splitDuration(echo), echo);
    setText(
      'echo-sub',
      `p50 ${fmtOrDash(num(t, 'latency_seconds.echo_latency.last_1s.p50'), fmtDuration)} · ` +
        `p999 ${fmtOrDash(num(t, 'latency_seconds.echo_latency.last_1s.p999'), fmtDuration)}`,
    );

    const lag = p99Last1s(t, 'loop_lag');
    setBig('loop-lag-p99', splitDuration(lag), lag);
    const util = rate1s(t, 'loop_utilization');
    setText(
      'loop-sub',
      `busy ${fmtOrDash(util == null ? null : util * 100, fmtPercent)} · ` +
        `${fmtOrDash(rate1s(t, 'loop_iterations'), fmtCount)} turns/s`,
    );

    const cpu = num(s, 'process.cpu_percent_1s');
    setBig('cpu-percent', splitPercent(cpu), cpu);
    setText('cpu-sub', `${fmtOrDash(num(s, 'process.cpu_seconds_total'), (v) => v.toFixed(1))} s CPU total`);

    const rss = num(s, 'process.resident_memory_bytes');
    setBig('rss', splitBytes(rss), rss);
    setText(
      'rss-sub',
      `pool ${fmtOrDash(num(t, 'pool.block_bytes_in_use'), fmtBytes)} used · ` +
        `${fmtOrDash(num(t, 'pool.block_bytes_free'), fmtBytes)} free`,
    );

    document.title = ready == null ? 'Flux gateway' : `Flux · ${fmtCount(ready)} ready`;
  }

  function renderReactors(s) {
    const tbody = $('reactors-table').tBodies[0];
    const reactors = Array.isArray(s.reactors) ? s.reactors : [];
    if (reactors.length === 0) {
      messageRow(tbody, 13, 'no reactor in /stats');
      setText('reactor-balance', '');
      return;
    }
    const ready = reactors.map((r) => num(r, 'connections.by_state.ready') ?? 0);
    const totalReady = ready.reduce((a, b) => a + b, 0);
    const rows = reactors.map((r, i) => {
      const tr = document.createElement('tr');
      const util = rate1s(r, 'loop_utilization');
      tr.append(
        cell(String(r.reactor ?? i)),
        cell(fmtOrDash(num(r, 'connections.by_state.ready'), fmtCount), 'num'),
        cell(fmtOrDash(num(r, 'connections.by_state.handshake'), fmtCount), 'num'),
        cell(fmtOrDash(num(r, 'connections.by_state.closing'), fmtCount), 'num'),
        barCell(totalReady > 0 ? ready[i] / totalReady : 0,
          totalReady > 0 ? fmtPercent((100 * ready[i]) / totalReady) : '–'),
        cell(fmtOrDash(rate1s(r, 'frames_in'), fmtCount), 'num'),
        cell(fmtOrDash(rate1s(r, 'frames_out'), fmtCount), 'num'),
        cell(fmtOrDash(util == null ? null : util * 100, fmtPercent), 'num'),
        cell(fmtOrDash(p99Last1s(r, 'loop_lag'), fmtDuration), 'num'),
        cell(fmtOrDash(p99Last1s(r, 'echo_latency'), fmtDuration), 'num'),
        cell(fmtOrDash(num(r, 'traffic.bytes_queued'), fmtBytes), 'num'),
        cell(fmtOrDash(num(r, 'pool.block_bytes_in_use'), fmtBytes), 'num'),
        cell(fmtOrDash(rate1s(r, 'context_switches_involuntary'), fmtCount), 'num'),
      );
      return tr;
    });
    tbody.replaceChildren(...rows);
    // Balance: the busiest reactor's ready count over the mean (1.00× = even).
    const mean = totalReady / reactors.length;
    const worst = Math.max(...ready);
    setText('reactor-balance', mean > 0 ? `max / mean ready ${(worst / mean).toFixed(2)}×` : '');
  }

  // Top connections: those with output queued (by pending bytes), then the
  // rest by rtt, ten in all.
  function topConnections(byPending, byRtt) {
    const key = (c) => `${c.reactor}/${c.id}`;
    const pending = (Array.isArray(byPending.connections) ? byPending.connections : []).slice(0, 10);
    const seen = new Set(pending.map(key));
    const rest = (Array.isArray(byRtt.connections) ? byRtt.connections : []).filter((c) => !seen.has(key(c)));
    return { list: pending.concat(rest).slice(0, 10), open: num(byRtt, 'open'), queued: pending.length };
  }

  function renderConnections({ list, open, queued }) {
    const tbody = $('busiest-table').tBodies[0];
    $('busiest-table').dataset.rows = String(list.length);
    setText('busiest-caption', `${queued} with output queued, then by rtt · top ${list.length} of ${open ?? '?'}`);
    if (list.length === 0) {
      messageRow(tbody, 15, 'no open connection');
      return;
    }
    tbody.replaceChildren(
      ...list.map((c) => {
        const tr = document.createElement('tr');
        const state = document.createElement('td');
        const pill = document.createElement('span');
        pill.className = `pill state-${String(c.state || 'unknown').replace(/[^a-z-]/gi, '')}`;
        pill.textContent = c.state ?? '?';
        state.append(pill);
        tr.append(
          cell(String(c.id ?? '?'), 'num'),
          cell(String(c.reactor ?? '?')),
          cell(String(c.peer ?? '?'), 'mono'),
          state,
          cell(fmtOrDash(num(c, 'age_seconds'), fmtUptime), 'num'),
          cell(fmtOrDash(num(c, 'frames_in'), fmtCount), 'num'),
          cell(fmtOrDash(num(c, 'frames_out'), fmtCount), 'num'),
          cell(fmtOrDash(num(c, 'bytes_in'), fmtBytes), 'num'),
          cell(fmtOrDash(num(c, 'bytes_out'), fmtBytes), 'num'),
          cell(fmtOrDash(num(c, 'bytes_pending'), fmtBytes), num(c, 'bytes_pending') > 0 ? 'num hot' : 'num'),
          cell(fmtOrDash(num(c, 'tcp.rtt_seconds'), fmtDuration), 'num rtt'),
          cell(fmtOrDash(num(c, 'tcp.retransmits'), fmtCount), num(c, 'tcp.retransmits') > 0 ? 'num hot' : 'num'),
          cell(fmtOrDash(num(c, 'idle_seconds'), fmtDuration), 'num'),
          cell(fmtOrDash(num(c, 'paused_seconds'), fmtDuration), num(c, 'paused_seconds') > 0 ? 'num hot' : 'num'),
          cell(fmtOrDash(num(c, 'seq'), fmtCount), 'num'),
        );
        return tr;
      }),
    );
  }

  function renderStalls(body) {
    const table = $('stalls-table');
    const tbody = table.tBodies[0];
    const list = Array.isArray(body.stalls) ? body.stalls : [];
    const threshold = num(body, 'threshold_seconds');
    table.dataset.rows = String(list.length);
    table.dataset.threshold = threshold == null ? '' : String(threshold);
    setText(
      'stalls-caption',
      threshold > 0 ? `iterations busy over ${fmtDuration(threshold)} · newest ${list.length}` : 'off (--stall-threshold 0)',
    );
    if (list.length === 0) {
      messageRow(tbody, 6, threshold > 0 ? 'no stall' : 'stall records are off');
      return;
    }
    tbody.replaceChildren(
      ...list.slice(0, 16).map((s) => {
        const tr = document.createElement('tr');
        const started = num(s, 'start_unix_seconds');
        const duration = num(s, 'duration_seconds');
        tr.append(
          cell(started == null ? '–' : new Date(started * 1000).toLocaleTimeString()),
          cell(String(s.reactor ?? '?')),
          cell(`${fmtOrDash(duration, fmtDuration)}${s.ongoing ? ' (ongoing)' : ''}`, s.ongoing ? 'num hot' : 'num'),
          cell(String(s.activity ?? '?')),
          cell(s.connection == null ? '–' : String(s.connection), 'num'),
          cell(s.peer == null ? '–' : s.peer === '' ? '(gone)' : String(s.peer), 'mono'),
        );
        return tr;
      }),
    );
  }

  // ------------------------------------------------------------- liveness

  const state = {
    updates: 0,
    lastOkMs: null, // Date.now() of the last successful /stats
    lastSampleT: null, // now_unix_seconds of the last sample
    lastUptime: null,
    failing: false,
    lastError: '',
  };

  function renderLiveness() {
    const ageS = state.lastOkMs == null ? null : Math.max(0, Math.round((Date.now() - state.lastOkMs) / 1000));
    const banner = $('banner');
    const dot = $('status-dot');
    if (state.failing) {
      setText('banner-detail', ageS == null ? 'last update never' : `last update ${ageS}s ago`);
      banner.title = state.lastError;
      banner.hidden = false;
      document.body.classList.add('offline');
      dot.className = 'status-dot down';
      dot.title = state.lastError;
    } else {
      banner.hidden = true;
      document.body.classList.remove('offline');
      dot.className = state.lastOkMs == null ? 'status-dot' : 'status-dot up';
      dot.title = 'live';
    }
    setText('last-update', ageS == null ? 'connecting…' : ageS < 2 ? 'live' : `updated ${ageS}s ago`);
  }

  // ---------------------------------------------------------------- polling

  async function getJson(url) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), FETCH_TIMEOUT_MS);
    try {
      const res = await fetch(url, { cache: 'no-store', signal: ctrl.signal });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return await res.json();
    } catch (e) {
      throw new Error(e.name === 'AbortError' ? `timed out after ${FETCH_TIMEOUT_MS} ms` : e.message);
    } finally {
      clearTimeout(timer);
    }
  }

  function onStats(s, charts) {
    const t = num(s, 'now_unix_seconds') ?? Date.now() / 1000;
    const uptime = num(s, 'uptime_seconds');
    // A gap in time (outage) or a smaller uptime (restart) breaks the lines.
    const gap =
      state.lastSampleT != null &&
      t > state.lastSampleT &&
      (t - state.lastSampleT > GAP_S || (uptime != null && state.lastUptime != null && uptime < state.lastUptime));
    if (state.lastSampleT != null && t <= state.lastSampleT) {
      // The same sample again (polls faster than the server samples), or the
      // server clock stepped back: then start the history afresh.
      if (state.lastSampleT - t <= GAP_S) return;
      for (const c of charts) c.clear();
    }
    state.lastSampleT = t;
    state.lastUptime = uptime;
    for (const c of charts) c.push(t, s, gap);
    renderHeader(s);
    renderReactors(s);
  }

  // Runs `step` every `periodMs`, measured start to start, never overlapping;
  // an exception in one step does not stop the next.
  function every(periodMs, step) {
    const tick = async () => {
      const started = performance.now();
      try {
        await step();
      } catch (e) {
        console.error(e);
      }
      setTimeout(tick, Math.max(0, periodMs - (performance.now() - started)));
    };
    tick();
  }

  function start() {
    const charts = makeCharts();
    every(POLL_MS, async () => {
      let s;
      try {
        s = await getJson('stats');
        state.lastOkMs = Date.now();
        state.failing = false;
      } catch (e) {
        state.failing = true;
        state.lastError = `/stats: ${e.message}`;
        console.warn(state.lastError);
      }
      renderLiveness();
      if (s === undefined) return;
      // A rendering bug is not an outage: it surfaces in the console and in
      // data-updates not moving, never as the "unreachable" banner.
      onStats(s, charts);
      state.updates++;
      document.body.dataset.updates = String(state.updates);
    });
    every(CONNECTIONS_POLL_MS, async () => {
      try {
        const byPending = await getJson('connections?limit=10&sort=pending&min_pending=1');
        const byRtt = await getJson('connections?limit=20&sort=rtt');
        renderConnections(topConnections(byPending, byRtt));
      } catch (e) {
        messageRow($('busiest-table').tBodies[0], 15, `/connections unavailable: ${e.message}`);
      }
      try {
        renderStalls(await getJson('stalls'));
      } catch (e) {
        messageRow($('stalls-table').tBodies[0], 6, `/stalls unavailable: ${e.message}`);
      }
    });
    // Keeps "Ns ago" counting while a request hangs.
    setInterval(renderLiveness, 1000);
  }

  start();
})();
