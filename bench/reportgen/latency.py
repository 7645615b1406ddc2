"""The latency sections: the seed target (profile 1), throughput against the
baseline echo server (profile 2) and the latency curve with its plot
(profile 3). Each returns its template block filled with figures."""

import os
import subprocess
import sys

from .figures import NA, at_least, below, f0, f1, fmt, fps, jround, kib_to_mib, median, num, ratio, raw, sorted_mid, two_decimals


def seed_section(t, r, st):
    seed, conns = st["seed"], st["seed_conns"]
    p99s, lags = r.per_second("seed", "p99_us"), r.per_second("seed", "send_lag_p99_us")
    seconds = r("seed", "seconds") or []
    allocs = raw(r("seed", "server.buffer_allocations_measured"))
    a0, a1 = num(seed.get("rss0")) or 0, num(seed.get("rss1")) or 0
    ready_failed = None
    if r("seed", "connections") is not None:
        ready_failed = sum(r("seed", f"connections.{k}_failed") or 0 for k in ("connect", "handshake"))
    return t.text(
        "seed",
        conns=conns,
        load=st["load"].get("seed", NA),
        ready=raw(r("seed", "connections.ready")),
        failed=raw(ready_failed),
        count=raw(r("seed", "latency_us.count")),
        seconds=raw(r("seed", "measure.seconds")),
        fps=f0(r("seed", "throughput.frames_per_second")),
        p50=f0(r("seed", "latency_us.p50")),
        p99=f0(r("seed", "latency_us.p99")),
        p999=f0(r("seed", "latency_us.p999")),
        max=f0(r("seed", "latency_us.max")),
        p99_status=t.status(below(r("seed", "latency_us.p99"), 1000)),
        lag=f0(r("seed", "send_lag_us.p99")),
        second_p99=t.text(
            "seed_second_p99",
            median=jround(sorted_mid(p99s)),
            best=jround(p99s[0]),
            worst=jround(p99s[-1]),
        )
        if p99s
        else NA,
        seconds_under=t.text(
            "seed_seconds_under",
            under=sum(1 for s in seconds if s.get("p99_us", 1e18) < 1000),
            total=len(seconds),
        )
        if r("seed") is not None
        else NA,
        second_lag=t.text("seed_second_lag", median=jround(sorted_mid(lags)), worst=jround(lags[-1]))
        if lags
        else NA,
        cpu=f1(seed.get("cpu")),
        cpu_status=t.status(below(seed.get("cpu"), 15)),
        cpu_stats=f1(r("seed", "server.cpu_percent")),
        rss_idle=kib_to_mib(seed.get("rss_idle")),
        rss0=kib_to_mib(a0),
        rss1=kib_to_mib(a1),
        rss_growth="%+.1f%%" % ((a1 - a0) / a0 * 100) if a0 > 0 else NA,
        loop_lag=f0(r("seed", "server.loop_lag_p99_us_median")),
        allocs=allocs,
        allocs_per_conn=fmt("%.2f", num(allocs) / conns if num(allocs) is not None else None),
        allocs_status=t.status(allocs == "0"),
        client_cpu=f1(r("seed", "client.cpu_percent")),
        busy=f0(seed.get("busy")),
        errors=raw(r("seed", "errors")),
    )


def throughput_ratios(r, st):
    gateway, baseline = fps(r, "tp-gateway", st["rounds"]), fps(r, "tp-baseline", st["rounds"])
    return [ratio(g, b) for g, b in zip(gateway, baseline)]


def throughput_section(t, r, st):
    ratios = throughput_ratios(r, st)
    rows = []
    for i in range(1, st["rounds"] + 1):
        g, b = f"tp-gateway-{i}", f"tp-baseline-{i}"
        rows.append(
            dict(
                round=i,
                g_fps=f0(r(g, "throughput.frames_per_second")),
                g_p99=f0(r(g, "latency_us.p99")),
                b_fps=f0(r(b, "throughput.frames_per_second")),
                b_p99=f0(r(b, "latency_us.p99")),
                ratio=two_decimals(ratios[i - 1]),
                g_client=f0(r(g, "client.cpu_percent")),
                b_client=f0(r(b, "client.cpu_percent")),
                g_server=f0(r(g, "server.cpu_percent")),
                g_allocs=raw(r(g, "server.buffer_allocations_measured")),
            )
        )
    med = two_decimals(median(ratios))
    by_value = sorted(ratios, key=float)
    return t.text(
        "throughput",
        load=st["load"].get("throughput", NA),
        rows=t.rows("throughput_row", rows),
        ratio=med,
        status=t.status(at_least(med, 0.90)),
        gateway=f0(median(fps(r, "tp-gateway", st["rounds"]))),
        baseline=f0(median(fps(r, "tp-baseline", st["rounds"]))),
        ratio_min=by_value[0],
        ratio_max=by_value[-1],
        errors=raw(r.errors_over("tp-*.json")),
    )


def curve_points(r, st):
    """One dict per load step (None for what a run did not report)."""
    points = []
    for pct in st["steps"]:
        g, b = f"curve-gateway-{pct}", f"curve-baseline-{pct}"
        points.append(
            dict(
                pct=pct,
                rate=r(g, "config.rate_per_second"),
                g_p50=r(g, "latency_us.p50"),
                g_p90=r(g, "latency_us.p90"),
                g_p99=r(g, "latency_us.p99"),
                g_p999=r(g, "latency_us.p999"),
                b_p50=r(b, "latency_us.p50"),
                b_p99=r(b, "latency_us.p99"),
                g_fps=r(g, "throughput.frames_per_second"),
                b_fps=r(b, "throughput.frames_per_second"),
                g_lag=r(g, "send_lag_us.p99"),
                g_server=r(g, "server.cpu_percent"),
                g_client=r(g, "client.cpu_percent"),
            )
        )
    return points


def knee(t, points):
    """The last load before p99 exceeds 2 x its best at <= 50 % load at two
    consecutive steps (one noisy step on a shared host does not make a knee)."""
    pts = [p for p in points if p["g_p99"] is not None]
    base = min((p["g_p99"] for p in pts if num(p["pct"]) <= 50), default=None)
    if not pts or base is None:
        return t.text("knee_none")
    n, i = len(pts), 0
    while i < n - 1 and not (pts[i]["g_p99"] > 2 * base and pts[i + 1]["g_p99"] > 2 * base):
        i += 1
    if i == 0:
        return t.text("knee_none")
    k = pts[-1] if i >= n - 1 else pts[i - 1]
    rate = "%d" % (num(k["rate"]) or 0)
    return t.text("knee", pct=k["pct"], rate=rate, p99="%.0f" % k["g_p99"], base="%.0f" % base)


def curve_section(t, st, points, plot_name):
    rows = [dict((k, f0(v)) for k, v in p.items() if k != "pct") | {"pct": p["pct"]} for p in points]
    return t.text(
        "curve",
        capacity="%.0f" % (num(st["capacity"]) or 0),
        load=st["load"].get("curve", NA),
        rows=t.rows("curve_row", rows),
        knee=knee(t, points),
        plot=plot_name,
    )


def plot(t, st, points, results_dir, out):
    """The latency curve as a PNG (gnuplot); its data in RESULTS/curve.dat."""
    dat = os.path.join(results_dir, "curve.dat")
    cols = ["pct", "rate", "g_p50", "g_p90", "g_p99", "g_p999", "b_p50", "b_p99", "g_fps", "b_fps", "g_lag"]
    with open(dat, "w") as f:
        f.write("# " + " ".join(cols) + "\n")
        for p in points:
            f.write(" ".join(raw(p[c]) for c in cols) + "\n")
    title = t.text("plot_title", nproc=st["nproc"])
    xlabel = t.text("plot_xlabel", capacity="%.0f" % (num(st["capacity"]) or 0))
    script = t.text("plot_script", out=out, title=title, xlabel=xlabel, data=dat)
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"report: no plot ({e})", file=sys.stderr)
