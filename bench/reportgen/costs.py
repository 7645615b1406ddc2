"""The cost sections: what metrics (profile 5), a scrape under load
(profile 6) and the replay buffer (profile 7b) cost, each measured as
alternating on/off rounds and read as median per-round ratios."""

from .figures import NA, below, cost_pct, cpu_ns, f0, kib_to_mib, median, mib, num, on_off, per_session, ratio, raw, sorted_mid


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
