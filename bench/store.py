#!/usr/bin/env python3
"""Session store benchmarks: the memory store against the Redis store.

    bench/store.py [--gateway BIN] [--fluxbench BIN] [--rounds 3] [--seconds 5]
                   [--sessions 1000] [--profile throughput|memory|kill|all] [--json FILE]

throughput  alternating rounds (the order rotates each round, as bench/ab.py
            does): a gateway on the memory store and a gateway on a Redis
            store (a real redis-server, tests/support/redis_server.py, on a
            free loopback port, FLUSHALL between rounds), each loaded by
            fluxbench with 100 connections x window 16 x 64 B, closed loop,
            1 s warm-up and --seconds measured. Per round: frames/s, echo
            p50/p99 (fluxbench: from send to echo), the gateway's CPU and,
            for Redis, redis-server's CPU (both from /proc/<pid>/stat over the
            whole fluxbench run, warm-up and drain included, in % of one
            core) and the store round trip p50/p99 (the gateway's /stats).
            Then the medians of the per-round ratios redis / memory.
memory      Redis memory per session: --sessions connections handshake on a
            Redis-store gateway and are held; INFO memory used_memory before
            and after, divided by the sessions; again once each has echoed
            256 frames of 64 B (the default --replay-frames, all kept), and
            once they are detached (closed without FLUX_BYE).
kill        the churn + kill run of tests/cluster/test_store_cluster.py with
            each store: scripts/cluster.sh --nodes 3 (real HAProxy), fluxbench
            through HAProxy (60 connections x window 4, 20 drops/s, 8 s,
            --resume-on-close), node 3 SIGKILLed 2.5 s after it echoes; the
            sessions it held are resumed on the survivors (Redis) or are
            lost (memory: FLUX_INVALID session-unknown).

Prints Markdown on stdout (the figures of docs/benchmarks.md, "Session
store"); progress on stderr; --json keeps the raw figures. Loopback only;
every wait has a deadline and every process started is stopped on exit.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
from store_support import Gateway, RedisServer, dial, hello, metric_sum, payloads_for, wait_for  # noqa: E402
from fluxclient.codec import encode, recv_frame  # noqa: E402

LOAD = ["--conns", "100", "--window", "16", "--size", "64", "--warmup", "1s", "--grace", "2s"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def fluxbench(bench, port, extra, timeout):
    run = subprocess.run([bench, "--port", str(port), *extra, "--json", "--no-progress"], capture_output=True,
                         text=True, timeout=timeout)
    try:
        return run.returncode, json.loads(run.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"fluxbench exited {run.returncode} without JSON: {run.stderr[-2000:]}")


# ---------------------------------------------------------------- throughput

def throughput_round(args, store, redis, workdir):
    flags = ["--session-store", redis.url] if store == "redis" else []
    if redis:
        redis.command("FLUSHALL")
    gw = Gateway(args.gateway, flags, workdir, f"gw-{store}")
    if store == "redis":
        gw.wait_store_connected()
    try:
        pids = {"gateway": gw.proc.pid} | ({"redis": redis.pid} if store == "redis" else {})
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        t0 = time.monotonic()
        rc, r = fluxbench(args.fluxbench, gw.port, LOAD + ["--duration", f"{args.seconds}s"], args.seconds + 60)
        wall = time.monotonic() - t0
        cpu = {k: (cpu_seconds(p) - cpu0[k]) / wall * 100 for k, p in pids.items()}
        if rc != 0 or r["errors"]:
            raise RuntimeError(f"{store}: fluxbench failed ({rc}): {r.get('failures')}")
        status, body = gw.get("/stats")
        rt = json.loads(body)["total"]["latency_seconds"].get("store_round_trip", {})
        text = gw.metrics()
        row = {"frames_per_second": r["throughput"]["frames_per_second"],
               "p50_us": r["latency_us"]["p50"], "p99_us": r["latency_us"]["p99"],
               "gateway_cpu_percent": cpu["gateway"], "redis_cpu_percent": cpu.get("redis"),
               "store_rtt_p50_us": rt.get("p50", 0) * 1e6 if store == "redis" else None,
               "store_rtt_p99_us": rt.get("p99", 0) * 1e6 if store == "redis" else None,
               "store_commands": metric_sum(text, "flux_session_store_commands_total"),
               "fallbacks": metric_sum(text, "flux_session_store_fallbacks_total"),
               "frames_received": r["frames"]["received"]}
    finally:
        rc = gw.stop()
    if rc != 0:
        raise RuntimeError(f"gateway ({store}) exited {rc}")
    return row


def profile_throughput(args, redis, workdir):
    names = ["memory", "redis"]
    rounds = []
    load0 = os.getloadavg()[0]
    for i in range(args.rounds):
        order = names[i % 2:] + names[:i % 2]
        row = {}
        for name in order:
            row[name] = throughput_round(args, name, redis, workdir)
            log(f"round {i + 1} {name}: {row[name]['frames_per_second']:,.0f} frames/s, "
                f"p50 {row[name]['p50_us']:,.0f} us, p99 {row[name]['p99_us']:,.0f} us")
        row["order"] = order
        rounds.append(row)
    load1 = os.getloadavg()[0]
    out = [f"`python3 bench/store.py --profile throughput --rounds {args.rounds} --seconds {args.seconds}`: "
           f"100 connections x window 16 x 64 B, closed loop, 1 s warm-up, {args.seconds} s measured, "
           f"alternating order. Load average (1 min) {load0:.2f} -> {load1:.2f}.", "",
           "| round | store | frames/s | echo p50 | echo p99 | gateway CPU | redis CPU | store round trip p50 / p99 "
           "| commands / frame | fallbacks |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for i, row in enumerate(rounds, 1):
        for name in row["order"]:
            r = row[name]
            redis_cpu = f"{r['redis_cpu_percent']:.0f} %" if r["redis_cpu_percent"] is not None else "-"
            rtt = (f"{r['store_rtt_p50_us']:,.0f} / {r['store_rtt_p99_us']:,.0f} us"
                   if r["store_rtt_p50_us"] is not None else "-")
            per_frame = (f"{r['store_commands'] / r['frames_received']:.3f}"
                         if name == "redis" and r["frames_received"] else "-")
            out.append(f"| {i} | {name} | {r['frames_per_second']:,.0f} | {r['p50_us']:,.0f} us | "
                       f"{r['p99_us']:,.0f} us | {r['gateway_cpu_percent']:.0f} % | {redis_cpu} | {rtt} | "
                       f"{per_frame} | {r['fallbacks'] or 0:.0f} |")
    ratio = lambda key: [row["redis"][key] / row["memory"][key] for row in rounds]  # noqa: E731
    fps, p50, p99 = ratio("frames_per_second"), ratio("p50_us"), ratio("p99_us")
    out += ["", "| redis / memory (median of per-round ratios) | median | per round |", "|---|---|---|"]
    for label, xs in (("frames/s", fps), ("echo p50", p50), ("echo p99", p99)):
        out.append(f"| {label} | {statistics.median(xs):.2f} | " + ", ".join(f"{x:.2f}" for x in xs) + " |")
    p50_added = [row["redis"]["p50_us"] - row["memory"]["p50_us"] for row in rounds]
    rtt50 = [row["redis"]["store_rtt_p50_us"] for row in rounds]
    out += ["", "Echo p50 added by the store (redis - memory, per round): "
            + ", ".join(f"{x:,.0f} us" for x in p50_added)
            + "; store round trip p50 in the same rounds: " + ", ".join(f"{x:,.0f} us" for x in rtt50) + "."]
    return "\n".join(out), {"rounds": rounds, "ratios": {"frames_per_second": fps, "p50": p50, "p99": p99}}


# ---------------------------------------------------------------- memory

def profile_memory(args, redis, workdir):
    redis.command("FLUSHALL")
    gw = Gateway(args.gateway, ["--session-store", redis.url], workdir, "gw-memory-per-session").wait_store_connected()
    n = args.sessions
    socks = []
    try:
        base = redis.used_memory()
        for _ in range(n):
            s = dial(gw.port)
            socks.append((s, hello(s)))
        wait_for(lambda: len(redis.keys("flux:s:*")) == n, 30, f"{n} sessions in Redis")
        empty = redis.used_memory()
        frames = 256
        for s, sid in socks:
            payloads = payloads_for(sid, 1, frames, 64)
            s.sendall(b"".join(encode(p) for p in payloads))
            for p in payloads:
                assert recv_frame(s) == p
        full = redis.used_memory()
        for s, _ in socks:
            s.close()
        wait_for(lambda: len(redis.keys("flux:s:*")) == n and
                 all(redis.hgetall(k).get("state") == "detached" for k in redis.keys("flux:s:*")[:20]), 30,
                 "the sessions to be detached")
        detached = redis.used_memory()
        sample = redis.keys("flux:s:*")[0]
        kept = redis.command("LLEN", sample.replace("flux:s:", "flux:f:"))
    finally:
        for s, _ in socks:
            s.close()
        gw.stop()
    per = lambda x: (x - base) / n  # noqa: E731
    out = [f"`python3 bench/store.py --profile memory --sessions {n}`: Redis `INFO memory` used_memory with "
           f"{n} sessions of one gateway (defaults: --replay-frames 256, --replay-bytes 1 MiB).", "",
           "| sessions | used_memory above the empty Redis | per session |", "|---|---|---|",
           f"| {n} attached, no frame yet | {(empty - base) / 2**20:.2f} MiB | {per(empty):,.0f} B |",
           f"| {n} attached, 256 frames of 64 B each ({kept} kept) | {(full - base) / 2**20:.2f} MiB | "
           f"{per(full):,.0f} B |",
           f"| {n} detached (closed without FLUX_BYE), same frames | {(detached - base) / 2**20:.2f} MiB | "
           f"{per(detached):,.0f} B |"]
    return "\n".join(out), {"sessions": n, "base": base, "empty": empty, "full": full, "detached": detached,
                            "frames_kept": kept}


# ---------------------------------------------------------------- kill

LINE = re.compile(r"^cluster port=(\d+) haproxy_metrics_port=(\d+) nodes=(\S+?)(?: redis_port=(\d+))?$")


def kill_run(args, store, workdir):
    env = dict(os.environ, FLUX_SKIP_SETUP="1", FLUX_GATEWAY_BIN=args.gateway)
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "cluster.sh"), "--nodes", "3", "--port", "0",
                             "--session-store", store], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, text=True)
    try:
        line = {}
        t = threading.Thread(target=lambda: line.update(text=proc.stdout.readline().strip()), daemon=True)
        t.start()
        t.join(120)
        m = LINE.match(line.get("text", ""))
        if not m:
            raise RuntimeError(f"cluster.sh ({store}) did not start: {line}")
        port = int(m.group(1))
        nodes = [spec.split(":") for spec in m.group(3).split(",")]
        if store == "redis":  # sessions made before a node's store connects are node-local
            import urllib.request
            for _, addr, _, mport in nodes:
                def connected(addr=addr, mport=mport):
                    with urllib.request.urlopen(f"http://{addr}:{mport}/metrics", timeout=10) as r:
                        return metric_sum(r.read().decode(), "flux_session_store_connected") == 1
                wait_for(connected, 30, f"node {addr} connected to Redis")
        victim_pid, victim_addr, victim_mport = int(nodes[2][0]), nodes[2][1], nodes[2][3]

        def victim(name, **labels):
            import urllib.request
            with urllib.request.urlopen(f"http://{victim_addr}:{victim_mport}/metrics", timeout=10) as r:
                return metric_sum(r.read().decode(), name, **labels) or 0.0

        cmd = [args.fluxbench, "--port", str(port), "--conns", "60", "--window", "4", "--churn", "20",
               "--resume-on-close", "--warmup", "1s", "--duration", "8s", "--grace", "5s", "--json",
               "--no-progress"]
        bench = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = {}
        reader = threading.Thread(target=lambda: out.update(zip(("stdout", "stderr"), bench.communicate())))
        reader.start()
        wait_for(lambda: victim("flux_connections", state="ready") >= 10, 30, "node 3 to hold 10 READY")
        t0, f0 = time.monotonic(), victim("flux_frames_received_total")
        wait_for(lambda: time.monotonic() - t0 > 2.5 and victim("flux_frames_received_total") > f0 + 1000, 20,
                 "node 3 to echo for 2.5 s")
        held = victim("flux_connections", state="ready")
        os.kill(victim_pid, signal.SIGKILL)
        reader.join(120)
        r = json.loads(out["stdout"])
        return {"store": store, "exit": bench.returncode, "held": held, "connections": r["connections"],
                "frames": r["frames"], "churn": r["churn"], "failures": r["failures"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def profile_kill(args, workdir):
    runs = []
    for store in ("memory", "redis"):
        runs.append(kill_run(args, store, workdir))
        log(f"kill run ({store}): {runs[-1]['churn']} {runs[-1]['failures']}")
    out = ["`python3 bench/store.py --profile kill`: `scripts/cluster.sh --nodes 3 --session-store STORE`, "
           "fluxbench through HAProxy (60 connections x window 4, 64 B, 20 drops/s, 1 s warm-up + 8 s, "
           "`--resume-on-close`), node 3 SIGKILLed 2.5 s after it started echoing.", "",
           "| store | node 3 held | closed by the kill | resume failures | drops / resumes | "
           "frames echoed | lost | mismatched (dup / reorder) | resume p50 / p99 | fluxbench |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        c, f = r["churn"], r["frames"]
        lat = c["resume_latency_us"] or {}
        failures = "; ".join(f"{n} x {why}" for why, n in r["failures"].items()) or "ok"
        out.append(f"| {r['store']} | {r['held']:.0f} | {c['server_closes']} | {c['resume_failures']} | "
                   f"{c['drops']} / {c['resumes']} | "
                   f"{f['received']:,} | {f['lost']} | {f['mismatched']} | "
                   f"{lat.get('p50', 0) / 1000:,.1f} / {lat.get('p99', 0) / 1000:,.1f} ms | "
                   f"exit {r['exit']}: {failures} |")
    return "\n".join(out), runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", default=str(ROOT / "build" / "gateway" / "flux-gateway"))
    ap.add_argument("--fluxbench", default=str(ROOT / "build" / "bench" / "fluxbench"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--profile", choices=["throughput", "memory", "kill", "all"], default="all")
    ap.add_argument("--json")
    args = ap.parse_args()
    for b in (args.gateway, args.fluxbench):
        if not os.access(b, os.X_OK):
            sys.exit(f"store.py: {b} is not executable (build first)")
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"flux-bench-store-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    sections, figures = [], {}
    with RedisServer() as redis:
        log(f"redis-server pid {redis.pid} on {redis.url}")
        if args.profile in ("throughput", "all"):
            text, figures["throughput"] = profile_throughput(args, redis, workdir)
            sections.append(("Throughput and latency", text))
        if args.profile in ("memory", "all"):
            text, figures["memory"] = profile_memory(args, redis, workdir)
            sections.append(("Redis memory per session", text))
    if args.profile in ("kill", "all"):
        text, figures["kill"] = profile_kill(args, workdir)
        sections.append(("Churn and a node killed", text))
    print(f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"redis-server {redis_version()}.\n")
    for title, text in sections:
        print(f"#### {title}\n\n{text}\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


def redis_version():
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\S+)", out)
    return m.group(1) if m else "?"


if __name__ == "__main__":
    main()
