"""The full run's verdicts: the targets table (met / not met, with the
cause when not) and the conclusions, which read the seed and curve figures
again. Only a full run (every profile) renders these."""

from .costs import metrics_figures, scrape_figures, within_10pct
from .figures import NA, at_least, below, f0, f1, jround, kib, median, num, on_off, per_session, raw, sorted_mid, two_decimals
from .latency import throughput_ratios


def gaps_section(t, r, st):
    nproc, seed = st["nproc"], st["seed"]
    rows = []

    def gap(name, measured, ok, cause_name, status=None, always=False, **values):
        """A row; its cause only when the target is not met (or `always`)."""
        cause = t.text(cause_name, **values) if always or not ok else ""
        rows.append(dict(target=t.text(name), measured=measured, status=status or t.status(ok), cause=cause))

    p99 = r("seed", "latency_us.p99")
    med = sorted_mid(r.per_second("seed", "p99_us"))
    gap(
        "gap_seed_p99",
        t.text("gap_seed_p99_measured", p99=f0(p99), median=NA if med is None else jround(med)),
        below(p99, 1000),
        "gap_seed_p99_cause",
        nproc=nproc,
        lag=f0(r("seed", "send_lag_us.p99")),
        loop_lag=f0(r("seed", "server.loop_lag_p99_us_median")),
    )
    cpu = seed.get("cpu")
    gap("gap_seed_cpu", t.text("gap_seed_cpu_measured", cpu=f1(cpu)), below(cpu, 15), "gap_seed_cpu_cause")
    a0, a1 = num(seed.get("rss0")) or 0, num(seed.get("rss1")) or 0
    growth = "%+.1f" % ((a1 - a0) / a0 * 100) if a0 > 0 else NA
    allocs = raw(r("seed", "server.buffer_allocations_measured"))
    per_conn = "%.2f" % (num(allocs) / st["seed_conns"]) if num(allocs) is not None else NA
    gap(
        "gap_seed_rss",
        t.text("gap_seed_rss_measured", growth=growth, allocs=allocs),
        allocs == "0",
        "gap_seed_rss_cause",
        per_conn=per_conn,
    )
    tp = two_decimals(median(throughput_ratios(r, st)))
    gap("gap_throughput", tp, at_least(tp, 0.90), "gap_throughput_cause")
    per = st["idle"].get("per_conn")
    gap(
        "gap_scale",
        t.text("gap_scale_measured", kib=kib(per), ready=raw(r("scale", "connections.ready"))),
        below(per, 2048.5),
        "gap_scale_cause",
        status=t.text("gap_scale_status", status=t.status(below(per, 2048.5))),
        always=True,
        nofile=st["nofile_hard"],
    )
    m = metrics_figures(r, st)
    met = below(m["cost"], 3)
    gap(
        "gap_metrics",
        t.text("gap_metrics_measured", cost=m["cost"], ratio_min=m["ratio_min"], ratio_max=m["ratio_max"]),
        met,
        "gap_metrics_met" if met else "gap_metrics_cause",
        always=True,
        cost_min=m["cost_min"],
        cost_max=m["cost_max"],
        cpu_ratio=m["cpu_ratio"],
    )
    s = scrape_figures(r, st)
    gap(
        "gap_scrape",
        t.text("gap_scrape_measured", ratio=s["ratio"], ratio_med=s["ratio_med"]),
        within_10pct(s["ratio"]),
        "gap_scrape_cause",
        cpu_quiet=f0(r("scrape-quiet-1", "server.cpu_percent")),
        cpu_loaded=f0(r("scrape-loaded-1", "server.cpu_percent")),
        lag_quiet=f0(r("scrape-quiet-1", "send_lag_us.p99")),
        lag_loaded=f0(r("scrape-loaded-1", "send_lag_us.p99")),
    )
    rp = float(median(x[2] for x in on_off(r, "rp", st["rounds"])))
    cost = "%.1f" % ((1 - rp) * 100)
    gap("gap_replay", t.text("gap_replay_measured", cost=cost), below(cost, 10), "gap_replay_cause")
    allocs = raw(r("replay-memory", "server.buffer_allocations_measured"))
    frames = per_session(st["rpm"].get("s_frames_in0"), st["replay_conns"])
    gap(
        "gap_replay_allocs",
        t.text("gap_replay_allocs_measured", allocs=allocs, frames=frames),
        allocs == "0",
        "gap_replay_allocs_cause",
    )
    return t.text("gaps", rows=t.rows("gap_row", rows))


def seed_reading(t, r):
    if r("seed") is None:
        return t.text("seed_reading_none")
    seconds = r("seed", "seconds") or []
    if not seconds:
        return t.text("seed_reading_no_seconds")
    worst = max(seconds, key=lambda s: s["p99_us"])
    med = sorted_mid(sorted(s["p99_us"] for s in seconds))
    p99 = r("seed", "latency_us.p99")
    loop = r("seed", "server.loop_lag_p99_us_median")
    return t.text(
        "seed_reading",
        p99=jround(p99),
        median=jround(med),
        under=sum(1 for s in seconds if s["p99_us"] < 1000),
        total=len(seconds),
        worst_set=t.text("seed_reading_worst_set" if p99 > 5 * med else "seed_reading_not_worst_set"),
        worst=jround(worst["p99_us"]),
        worst_lag=jround(worst["send_lag_p99_us"]),
        client_stalled=t.text("seed_reading_client_stalled")
        if worst["send_lag_p99_us"] * 3 >= worst["p99_us"]
        else "",
        loop_lag=jround(loop) if num(loop) is not None else NA,
    )


def curve_reading(t, points):
    pts = [p for p in points if num(p["g_p50"]) is not None and (num(p["b_p50"]) or 0) > 0]
    if not pts:
        return t.text("curve_reading_none")
    close = sum(1 for p in pts if 0.5 <= p["g_p50"] / p["b_p50"] <= 2)
    lags = [num(p["g_lag"]) or 0 for p in pts]
    return t.text(
        "curve_reading",
        lag_min="%.0f" % min(lags),
        lag_max="%.0f" % max(lags),
        close=close,
        steps=len(pts),
        verdict=t.text("curve_reading_common" if close * 2 > len(pts) else "curve_reading_differ"),
    )


def conclusions(t, r, st, points):
    return t.text(
        "conclusions",
        nproc=st["nproc"],
        load_start=st["load_start"],
        load_end=st["load_end"],
        busy=f0(st["seed"].get("busy")),
        seed_cpu=f0(st["seed"].get("cpu")),
        seed_client=f0(r("seed", "client.cpu_percent")),
        tp_client=f0(r("tp-gateway-1", "client.cpu_percent")),
        tp_server=f0(r("tp-gateway-1", "server.cpu_percent")),
        seed_reading=seed_reading(t, r),
        curve_reading=curve_reading(t, points),
    )
