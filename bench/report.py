#!/usr/bin/env python3
"""Render docs/benchmarks.md (and its latency plot) from a bench/run results dir.

  python3 bench/report.py RESULTS_DIR --out FILE [--plot FILE] [--template FILE]

RESULTS_DIR holds what bench/run measured: fluxbench's JSON per run
(NAME.json), flood.py's JSON (flood-N.json) and state.json (the run's settings,
load averages, commands, and the figures bench/run took from /proc and /stats
samples). Every sentence of the report is in the template (bench/report/
template.md, format described at its top); this program only computes figures
and picks blocks. Python 3 standard library only; gnuplot draws the plot.
"""

import argparse
import decimal
import glob
import json
import math
import os
import string
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
NA = "n/a"
SEP = " / "  # between the items of a list in one table cell


# --- The template ---------------------------------------------------------------


def load_template(path):
    """{name: text} from the "@@ name" blocks; @include lines are inlined."""
    blocks, name, lines = {}, None, []
    base = os.path.dirname(path)

    def close():
        if name is not None:
            blocks[name] = "\n".join(lines).strip("\n")

    with open(path) as f:
        for line in f.read().split("\n"):
            if line.startswith("@@ "):
                close()
                name, lines = line[3:].strip(), []
            elif line.startswith("@#"):
                continue
            elif line.startswith("@include "):
                with open(os.path.join(base, line[9:].strip())) as inc:
                    # Kept out of substitution: its "$" are literal.
                    lines.append(inc.read().strip("\n").replace("$", "$$"))
            else:
                lines.append(line)
    close()
    return blocks


class Report:
    def __init__(self, blocks):
        self.blocks = blocks

    def text(self, name, **values):
        return string.Template(self.blocks[name]).substitute(values)

    def rows(self, name, rows):
        return "\n".join(self.text(name, **r) for r in rows)

    def status(self, ok):
        """met / not met / not measured (ok is None)."""
        return self.text("not_measured" if ok is None else "met" if ok else "not_met")


# --- Figures --------------------------------------------------------------------


def num(v):
    """A number, or None for null / "n/a" / "nan" / ""."""
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def raw(v):
    """As jq -r prints it ("n/a" for null)."""
    if v is None or v == "":
        return NA
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def fmt(spec, v):
    x = num(v)
    return NA if x is None else spec % x


def f0(v):
    return fmt("%.0f", v)


def f1(v):
    return fmt("%.1f", v)


def jround(x):
    """jq's round: half away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def median(values):
    """The lower median of the numbers among values, as given (a string stays
    a string: "1.000"), or None."""
    xs = sorted((v for v in values if num(v) is not None), key=num)
    return xs[(len(xs) + 1) // 2 - 1] if xs else None


def ratio(a, b):
    """A / B to 3 decimals, as a string ("0.000" when B is not positive)."""
    a, b = num(a) or 0.0, num(b) or 0.0
    return "%.3f" % (a / b if b > 0 else 0)


def kib(v):
    return fmt("%.1f", None if num(v) is None else num(v) / 1024)


def mib(v):
    return fmt("%.1f", None if num(v) is None else num(v) / 1048576)


def kib_to_mib(v):
    """KiB from /proc to MiB ("0.0" for a missing sample, as bench/run did)."""
    return "%.1f" % ((num(v) or 0) / 1024)


def below(v, limit):
    x = num(v)
    return None if x is None else x < limit


def at_least(v, limit):
    x = num(v)
    return None if x is None else x >= limit


def get(d, path, default=None):
    for key in path.split("."):
        if not isinstance(d, dict) or d.get(key) is None:
            return default
        d = d[key]
    return d


class Results:
    """The JSON files of one results directory."""

    def __init__(self, directory):
        self.dir = directory
        self.cache = {}

    def __call__(self, name, path=None):
        if name not in self.cache:
            try:
                with open(os.path.join(self.dir, name + ".json")) as f:
                    self.cache[name] = json.load(f)
            except (OSError, ValueError):
                self.cache[name] = None
        doc = self.cache[name]
        return doc if path is None else get(doc, path)

    def errors_over(self, pattern):
        """The sum of .errors over the runs matching pattern (None if none)."""
        names = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(self.dir, pattern)))
        errors = [self(n, "errors") for n in names]
        errors = [e for e in errors if e is not None]
        return sum(errors) if errors else None

    def per_second(self, name, key):
        return sorted(s[key] for s in self(name, "seconds") or [] if s.get(key) is not None)


def sorted_mid(xs):
    """jq's .[length / 2 | floor] of a sorted list."""
    return xs[len(xs) // 2] if xs else None


def cpu_ns(r, name):
    """The gateway's CPU time per echoed frame, in ns."""
    cpu, fps = r(name, "server.cpu_percent"), r(name, "throughput.frames_per_second") or 0
    return jround(cpu / 100 * 1e9 / fps) if cpu and fps > 0 else None


def two_decimals(v):
    """A ratio string such as "1.355" to 2 decimals, half up as one reads it."""
    return str(decimal.Decimal(str(v)).quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP))


def cost_pct(ratio_str):
    """(1 - r) * 100, to one decimal."""
    return "%.1f" % ((1 - float(ratio_str)) * 100)


# --- Sections -------------------------------------------------------------------


def header(t, st):
    note = t.text("header_note", note=st["rerun_note"]) + "\n" if st.get("rerun_note") else ""
    nice = st.get("nice")
    commit = st["commit"]
    if st.get("uncommitted"):
        commit = t.text("uncommitted", commit=commit)
    return t.text(
        "header",
        scale=st["scale"],
        date=st["date"],
        machine=st["machine"],
        load_start=st["load_start"],
        load_end=st["load_end"],
        note=note,
        priority=t.text("priority_nice", nice=nice) if nice else t.text("priority_default"),
        commit=commit,
    )


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


def fps(r, prefix, rounds):
    """frames/s of the runs PREFIX-1 .. PREFIX-rounds."""
    return [r(f"{prefix}-{i}", "throughput.frames_per_second") for i in range(1, rounds + 1)]


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


def scale_section(t, r, st):
    idle = st["idle"]
    allocs = raw(r("scale", "server.buffer_allocations_measured"))
    if allocs == NA:
        allocs = raw(idle.get("allocs"))
    per = raw(idle.get("per_conn"))
    failed = None
    if r("scale", "connections") is not None:
        failed = sum(r("scale", f"connections.{k}_failed") or 0 for k in ("connect", "handshake"))
    return t.text(
        "scale",
        conns=st["scale_conns"],
        load=st["load"].get("scale", NA),
        ready=raw(r("scale", "connections.ready")),
        open=raw(idle.get("open")),
        failed=raw(failed),
        rss_idle=kib_to_mib(idle.get("rss_idle")),
        rss_conns=kib_to_mib(idle.get("rss_conns")),
        stats_rss=mib(idle.get("stats_rss")),
        per_kib=kib(per),
        per=per,
        per_status=t.status(below(per, 2048.5)),
        buffers_in_use=kib(idle.get("buffers_in_use")),
        replay_memory=kib(idle.get("replay_memory")),
        frames_sent=raw(r("scale", "frames.sent")),
        allocs=allocs,
        allocs_status=t.text("met") if allocs == "0" else t.text("scale_allocs_not_met"),
        errors=raw(r("scale", "errors")),
        nofile=st["nofile_hard"],
    )


def on_off(r, prefix, rounds):
    """Per-round (on, off, "on/off ratio") of frames/s for mo-* or rp-* runs."""
    out = []
    for i in range(1, rounds + 1):
        on = r(f"{prefix}-on-{i}", "throughput.frames_per_second")
        off = r(f"{prefix}-off-{i}", "throughput.frames_per_second")
        out.append((on, off, ratio(on, off)))
    return out


def metrics_figures(r, st):
    rounds = on_off(r, "mo", st["rounds"])
    ratios = sorted((x[2] for x in rounds), key=float)
    med = float(median(x[2] for x in rounds))
    cpu = [ratio(cpu_ns(r, f"mo-on-{i}"), cpu_ns(r, f"mo-off-{i}")) for i in range(1, len(rounds) + 1)]
    return dict(
        rounds=rounds,
        median=med,
        ratio_min=ratios[0],
        ratio_max=ratios[-1],
        cost="%.1f" % ((1 - med) * 100),
        cost_min=cost_pct(ratios[-1]),
        cost_max=cost_pct(ratios[0]),
        cpu_ratio=raw(median(cpu)),
    )


def metrics_section(t, r, st):
    m = metrics_figures(r, st)
    rows = []
    for i, (on, off, rt) in enumerate(m["rounds"], 1):
        a, b = f"mo-on-{i}", f"mo-off-{i}"
        rows.append(
            dict(
                round=i,
                on_fps=f0(on),
                on_p99=f0(r(a, "latency_us.p99")),
                off_fps=f0(off),
                off_p99=f0(r(b, "latency_us.p99")),
                ratio=rt,
                on_ns=raw(cpu_ns(r, a)),
                off_ns=raw(cpu_ns(r, b)),
                on_client=f0(r(a, "client.cpu_percent")),
                off_client=f0(r(b, "client.cpu_percent")),
                on_allocs=raw(r(a, "server.buffer_allocations_measured")),
                off_allocs=raw(r(b, "server.buffer_allocations_measured")),
            )
        )
    return t.text(
        "metrics",
        nometrics_dir=st["nometrics_dir"],
        load=st["load"].get("metrics", NA),
        rows=t.rows("metrics_row", rows),
        cost="%+.1f %%" % ((1 - m["median"]) * 100),
        ratio="%.3f" % m["median"],
        status=t.status(below(m["cost"], 3)),  # the cost as shown, as in the targets table
        on=f0(median(x[0] for x in m["rounds"])),
        off=f0(median(x[1] for x in m["rounds"])),
        ratio_min=m["ratio_min"],
        ratio_max=m["ratio_max"],
        cpu_ratio=m["cpu_ratio"],
        cost_min=m["cost_min"],
        cost_max=m["cost_max"],
        errors=raw(r.errors_over("mo-*.json")),
    )


def dur(st, ms, minimum):
    """bench/run's scaled duration: "6000ms"."""
    return "%dms" % max(ms * float(st["scale"]), minimum)


def scrape_figures(r, st):
    rounds = []
    for i in range(1, st["scrape_rounds"] + 1):
        q, l = f"scrape-quiet-{i}", f"scrape-loaded-{i}"
        rounds.append(
            dict(
                q=q,
                l=l,
                quiet=r(q, "latency_us.p99"),
                loaded=r(l, "latency_us.p99"),
                ratio=ratio(r(l, "latency_us.p99"), r(q, "latency_us.p99")),
                quiet_med=sorted_mid(r.per_second(q, "p99_us")),
                loaded_med=sorted_mid(r.per_second(l, "p99_us")),
            )
        )
    quiet_med = median(x["quiet_med"] for x in rounds)
    loaded_med = median(x["loaded_med"] for x in rounds)
    return dict(
        rounds=rounds,
        ratio=raw(median(x["ratio"] for x in rounds)),
        quiet_med=quiet_med,
        loaded_med=loaded_med,
        ratio_med=ratio(loaded_med, quiet_med),
    )


def fetches(t, value):
    """ "9.9 9.8 2" (fetches/s of /metrics and /stats, failed fetches) as a cell."""
    words = (value or "").split()
    if len(words) != 3:
        return NA
    return t.text("scrape_fetches", metrics=words[0], stats=words[1], failed=words[2])


def within_10pct(v):
    return num(v) is not None and 0.9 <= num(v) <= 1.1


def scrape_section(t, r, st):
    s = scrape_figures(r, st)
    fetch_rates = st.get("scrape_fetch_rates", [])
    rows = []
    for i, x in enumerate(s["rounds"], 1):
        errors = [e for e in (r(x["q"], "errors"), r(x["l"], "errors")) if e is not None]
        rows.append(
            dict(
                round=i,
                quiet=f0(x["quiet"]),
                loaded=f0(x["loaded"]),
                ratio=x["ratio"],
                quiet_med=f0(x["quiet_med"]),
                loaded_med=f0(x["loaded_med"]),
                quiet_p50=f0(r(x["q"], "latency_us.p50")),
                loaded_p50=f0(r(x["l"], "latency_us.p50")),
                fetches=fetches(t, fetch_rates[i - 1]) if i <= len(fetch_rates) else NA,
                quiet_allocs=raw(r(x["q"], "server.buffer_allocations_measured")),
                loaded_allocs=raw(r(x["l"], "server.buffer_allocations_measured")),
                errors=raw(sum(errors) if errors else None),
            )
        )
    return t.text(
        "scrape",
        conns=st["seed_conns"],
        duration=dur(st, 15000, 3000),
        warmup=dur(st, 5000, 2000),
        load=st["load"].get("scrape", NA),
        rows=t.rows("scrape_row", rows),
        ratio=s["ratio"],
        status=t.status(within_10pct(s["ratio"])),
        quiet_med=f0(s["quiet_med"]),
        loaded_med=f0(s["loaded_med"]),
        ratio_med=s["ratio_med"],
        within=t.text("scrape_within" if within_10pct(s["ratio_med"]) else "scrape_moves"),
    )


def churn_section(t, r, st):
    return t.text(
        "churn",
        conns=st["churn_conns"],
        load=st["load"].get("churn", NA),
        drops=raw(r("churn", "churn.drops")),
        resumes=raw(r("churn", "churn.resumes")),
        failures=raw(r("churn", "churn.resume_failures")),
        mismatched=raw(r("churn", "frames.mismatched")),
        lost=raw(r("churn", "frames.lost")),
        replayed=raw(r("churn", "churn.replayed_frames")),
        resent=raw(r("churn", "churn.resent_frames")),
        p50=f0(r("churn", "churn.resume_latency_us.p50")),
        p99=f0(r("churn", "churn.resume_latency_us.p99")),
        max=f0(r("churn", "churn.resume_latency_us.max")),
        echo_p99=f0(r("churn", "latency_us.p99")),
        fps=f0(r("churn", "throughput.frames_per_second")),
        result=raw(r("churn", "result")),
        exit=raw(st["churn"].get("gateway_exit")),
    )


def per_session(frames, conns):
    x = num(frames)
    return NA if x is None else "%.0f" % (x / conns)


def replay_section(t, r, st):
    rounds = on_off(r, "rp", st["rounds"])
    med = float(median(x[2] for x in rounds))
    ratios = sorted((x[2] for x in rounds), key=float)
    rpm, conns, rate = st["rpm"], st["replay_conns"], st["replay_rate"]
    rows = [
        dict(
            round=i,
            on_fps=f0(on),
            on_p99=f0(r(f"rp-on-{i}", "latency_us.p99")),
            off_fps=f0(off),
            off_p99=f0(r(f"rp-off-{i}", "latency_us.p99")),
            ratio=rt,
            on_allocs=raw(r(f"rp-on-{i}", "server.buffer_allocations_measured")),
            off_allocs=raw(r(f"rp-off-{i}", "server.buffer_allocations_measured")),
        )
        for i, (on, off, rt) in enumerate(rounds, 1)
    ]
    frames_each = per_session(rpm.get("s_frames_in1"), conns)
    memory, attached = num(rpm.get("s_replay_memory1")), num(rpm.get("s_attached1"))
    allocs = raw(r("replay-memory", "server.buffer_allocations_measured"))
    if frames_each == NA:
        steady = t.text("replay_no_frames")
    elif float(frames_each) >= 256:
        name = "replay_steady_but_sixth" if float(frames_each) < 310 else "replay_steady"
        steady = t.text(name, frames=frames_each)
    else:
        steady = t.text("replay_filling", frames=frames_each)
    return t.text(
        "replay",
        load=st["load"].get("replay", NA),
        rows=t.rows("replay_row", rows),
        cost="%+.1f %%" % ((1 - med) * 100),
        ratio="%.3f" % med,
        status=t.status(below("%.1f" % ((1 - med) * 100), 10)),  # as shown, as in the targets table
        ratio_min=ratios[0],
        ratio_max=ratios[-1],
        conns=conns,
        rate=rate,
        rate_each="%g" % (rate / conns),
        seconds=raw(r("replay-memory", "measure.seconds")),
        warmup=rpm.get("warmup", NA),
        attached0=raw(rpm.get("s_attached0")),
        attached1=raw(rpm.get("s_attached1")),
        frames_each0=per_session(rpm.get("s_frames_in0"), conns),
        frames_each1=frames_each,
        memory0=mib(rpm.get("s_replay_memory0")),
        memory1=mib(rpm.get("s_replay_memory1")),
        per_session="%.1f" % (memory / attached / 1024) if memory is not None and attached else NA,
        frame_bytes0=mib(rpm.get("s_replay_frame_bytes0")),
        frame_bytes1=mib(rpm.get("s_replay_frame_bytes1")),
        stats_rss0=mib(rpm.get("s_rss0")),
        stats_rss1=mib(rpm.get("s_rss1")),
        rss_idle=kib_to_mib(rpm.get("rss_idle")),
        rss0=kib_to_mib(rpm.get("rss0")),
        rss1=kib_to_mib(rpm.get("rss1")),
        fps=f0(r("replay-memory", "throughput.frames_per_second")),
        p99=f0(r("replay-memory", "latency_us.p99")),
        lag=f0(r("replay-memory", "send_lag_us.p99")),
        allocs=allocs,
        allocs_status=t.status(allocs == "0"),
        errors=raw(r("replay-memory", "errors")),
        steady=steady,
    )


SCALING_CONFIGS = ["1", "2", "auto"]


def percents(t, words):
    """ "47 56" -> "47 % / 56 %" ("n/a" stays)."""
    return NA if words in (None, NA) else SEP.join(t.text("percent", v=w) for w in words.split())


def balance(t, value):
    """ "58 42|79 21" (connections | % of frames per reactor) as a cell."""
    if value in (None, NA) or "|" not in value:
        return NA
    conns, frames = value.split("|")
    return t.text("scaling_balance", conns=SEP.join(conns.split()), frames=percents(t, frames))


def scaling_section(t, r, st):
    scl = st["scaling"]
    rows = []
    for c in SCALING_CONFIGS:
        rows.append(
            dict(
                reactors=f"{c} ({scl.get(c + '.reactors', '?')})" if c == "auto" else c,
                fps=f0(scl.get(c + ".throughput.frames_per_second")),
                p99=f0(scl.get(c + ".latency_us.p99")),
                util=percents(t, scl.get(c + ".util")),
                balance=balance(t, scl.get(c + ".balance")),
                server=f0(scl.get(c + ".server.cpu_percent")),
                client=f0(scl.get(c + ".client.cpu_percent")),
                allocs=raw(scl.get(c + ".server.buffer_allocations_measured")),
            )
        )
    two = ratio(scl.get("2.throughput.frames_per_second"), scl.get("1.throughput.frames_per_second"))
    util1 = (scl.get("1.util") or NA).split(" ")[0]  # the only reactor's
    cpu1 = num(scl.get("1.server.cpu_percent")) or 0
    caution = ""
    if util1 != NA and (num(util1) or 0) < cpu1 / 2:
        caution = t.text("scaling_caution", util=util1, cpu="%.0f" % cpu1) + "\n"
    two_slower = t.text("scaling_two_slower") + "\n" if 0 < float(two) < 0.95 else ""
    return t.text(
        "scaling",
        nproc=st["nproc"],
        rounds=st["scaling_rounds"],
        load=st["load"].get("scaling", NA),
        rows=t.rows("scaling_row", rows),
        ratio=two,
        results_dir=st["results_dir"],
        caution=caution,
        two_slower=two_slower,
        auto_client=f0(scl.get("auto.client.cpu_percent")),
    )


def flood_section(t, r, st):
    rows = []
    for n in st["flood_counts"]:
        f = f"flood-{n}"
        within = r(f, "rss_within_96mib_at_s")
        within = t.text("flood_never") if within is None else t.text("flood_within", s=raw(within))
        rows.append(
            dict(
                n=n,
                connected=raw(r(f, "flooders_connected")),
                closed=raw(r(f, "flooders_closed_by_gateway")),
                before=raw(r(f, "rss_before_mib")),
                peak=raw(r(f, "rss_peak_mib")),
                end=raw(r(f, "rss_flood_end_mib")),
                after=raw(r(f, "rss_after_mib")),
                within=NA if r(f) is None else within,
                count=raw(r(f, "probe.count")),
                p50=raw(r(f, "probe.p50_ms")),
                p99=raw(r(f, "probe.p99_ms")),
                max=raw(r(f, "probe.max_ms")),
                max_at=raw(r(f, "probe.max_sent_at_s")),
                failures=raw(r(f, "probe.failures")),
                up=raw(r(f, "gateway_up")),
            )
        )
    return t.text(
        "flood",
        flood_seconds=raw(r(f"flood-{st['flood_counts'][0]}", "flood_seconds")),
        load=st["load"].get("flood", NA),
        rows=t.rows("flood_row", rows),
        results_dir=st["results_dir"],
    )


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


def render(t, results_dir, plot_path=None):
    with open(os.path.join(results_dir, "state.json")) as f:
        st = json.load(f)
    r = Results(results_dir)
    has = set(st["profiles"]).__contains__
    points = curve_points(r, st) if has("curve") else []
    parts = [header(t, st)]
    if has("seed"):
        parts.append(seed_section(t, r, st))
    if has("throughput"):
        parts.append(throughput_section(t, r, st))
    if has("curve"):
        plot_name = os.path.basename(plot_path) if plot_path else "benchmarks-latency.png"
        parts.append(curve_section(t, st, points, plot_name))
        if plot_path:
            plot(t, st, points, results_dir, plot_path)
    if has("scale"):
        parts.append(scale_section(t, r, st))
    if has("metrics"):
        parts.append(metrics_section(t, r, st))
    if has("scrape"):
        parts.append(scrape_section(t, r, st))
    if has("churn"):
        parts.append(churn_section(t, r, st))
    if has("replay"):
        parts.append(replay_section(t, r, st))
    if has("scaling"):
        parts.append(scaling_section(t, r, st))
    if has("flood"):
        parts.append(flood_section(t, r, st))
    if st["full"]:
        # Kept from runs of other tools / by hand, then the full run's verdicts.
        parts += [t.text("flood_before_after"), t.text("cluster"), t.text("store")]
        parts += [gaps_section(t, r, st), conclusions(t, r, st, points)]
    parts.append(t.text("commands", commands="\n".join(st["commands"]), results_dir=st["results_dir"]))
    return "\n\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="bench/run's results directory (state.json and the JSON figures)")
    ap.add_argument("--out", required=True, help="the Markdown file to write ('-' for stdout)")
    ap.add_argument("--plot", help="the latency plot (PNG) to draw, when the curve profile ran")
    ap.add_argument("--template", default=os.path.join(HERE, "report", "template.md"))
    args = ap.parse_args()
    doc = render(Report(load_template(args.template)), args.results, args.plot)
    if args.out == "-":
        sys.stdout.write(doc)
    else:
        with open(args.out, "w") as f:
            f.write(doc)


if __name__ == "__main__":
    main()
