"""The capacity sections: idle connections at scale (profile 4), session
churn (profile 7), reactor scaling (profile 8) and the flood
(profile 9). Each returns its template block filled with figures."""

from .figures import NA, SEP, below, f0, kib, kib_to_mib, mib, ratio, raw, num


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
