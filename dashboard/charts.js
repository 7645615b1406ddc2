// Flux live dashboard: the time-series charts (uPlot), their axes and
// series, and the set of cards makeCharts() builds. Uses format.js.
//
// Plain ES2020, no framework, no build step: this file is embedded verbatim.
'use strict';

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
