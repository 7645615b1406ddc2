// Flux live dashboard.
//
// Polls GET /stats every second (contract: docs/stats.md) and
// GET /connections every 2 s, keeps the last 5 minutes in memory and draws
// them with uPlot (served by the gateway at /uPlot.iife.min.js). The
// constants and helpers are in format.js, the charts in charts.js (loaded
// first, see index.html); this file renders and polls.
//
// Test hooks (tests/dashboard/browser_test.sh):
//   - document.body.dataset.updates: number of successful /stats updates;
//   - #ready-connections, #frames-in-rate, #echo-p99, #loop-lag-p99,
//     #cpu-percent, #rss, #uptime carry data-raw = the raw /stats value.
//
// Plain ES2020, no framework, no build step: this file is embedded verbatim.
'use strict';

(() => {
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
