#!/usr/bin/env python3
"""Cluster benchmarks: scale of a fleet, and the cost of the balancer.

    bench/cluster.py [--gateway BIN] [--fluxbench BIN] [--profile scale|balancer|all]
                     [--nodes 6] [--conns 100000] [--rounds 3] [--json FILE]

scale     `scripts/cluster.sh --nodes N` (real HAProxy), a real Prometheus
          running prometheus.yml's flux-cluster job, and --conns handshaken
          connections held by the nodes. They go straight to the nodes (one
          fluxbench process per node, `--proxy-v2` standing in for HAProxy's
          header): through HAProxy every connection costs it two descriptors,
          and one process here is capped at 20,000, so the balancer would be
          the bound at 10,000. Reports handshakes/s (from the first connect
          until every connection is READY, polled on the nodes), RSS per
          connection per node (VmRSS growth over READY connections), and
          every expression of the dashboard's Cluster row as Prometheus
          answers it while the connections are held.
balancer  a 1-node cluster; alternating rounds of the same fluxbench load
          through HAProxy and straight to the node (`--proxy-v2`, so both
          carry the header): closed loop (100 connections x window 16 x 64 B)
          for throughput and latency at saturation, open loop (10,000
          frames/s) for latency at a fixed rate. Reports each round and the
          median of the per-round ratios.

Prints a Markdown report on stdout (the figures of docs/benchmarks.md);
--json keeps the raw figures. Loopback only; every wait has a deadline and
every process started is stopped on exit.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
from cluster_support import Cluster  # noqa: E402
from prometheus_support import Prometheus, cluster_job  # noqa: E402

READY = re.compile(r'^flux_connections\{[^}]*state="ready"[^}]*\} (\S+)$', re.M)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_average():
    return os.getloadavg()[0]


class BenchCluster(Cluster):
    """scripts/cluster.sh (cluster_support.Cluster) and what the benchmark
    reads of its nodes."""

    def ready(self, i):
        """READY connections of node i (its /metrics)."""
        return int(sum(float(v) for v in READY.findall(self.node_get(i, "/metrics"))))

    def rss_bytes(self, i):
        status = Path(f"/proc/{self.nodes[i]['pid']}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024


def start_cluster(gateway, nodes):
    return BenchCluster.start(gateway, nodes, timeout=120)


def stop_cluster(cluster):
    cluster.stop(timeout=90)


def fluxbench(binary, host, port, args, proxy_v2=False):
    cmd = [binary, "--host", host, "--port", str(port), "--json", "--no-progress", *args]
    if proxy_v2:
        cmd.append("--proxy-v2")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout):
    out, err = proc.communicate(timeout=timeout)
    if not out.strip():
        raise RuntimeError(f"fluxbench exited {proc.returncode} without a result: {err[-1500:]}")
    return json.loads(out)


# ----------------------------------------------------------------- scale

def cluster_row_expressions():
    with open(ROOT / "grafana" / "dashboards" / "flux-gateway.json") as f:
        dash = json.load(f)
    [row] = [p for p in dash["panels"] if p.get("type") == "row" and p.get("title") == "Cluster"]
    for panel in row["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["legendFormat"], target["expr"].replace("$__rate_interval", "4s")


def scale(args, workdir):
    per_node = -(-args.conns // args.nodes)
    cluster = start_cluster(args.gateway, args.nodes)
    prom = None
    benches = []
    try:
        nodes = {i: f"{n['addr']}:{n['mport']}" for i, n in cluster.nodes.items()}
        prom = Prometheus(workdir, cluster_job(nodes, f"127.0.0.1:{cluster.haproxy_metrics_port}"))
        if not prom.wait_for_targets(args.nodes + 1, 60):
            raise RuntimeError("Prometheus did not scrape every node and HAProxy")
        rss_idle = {i: cluster.rss_bytes(i) for i in cluster.nodes}
        load_start = load_average()
        log(f"scale: {args.conns} connections, {per_node} per node, straight to {args.nodes} nodes")
        started = time.monotonic()
        for i, node in cluster.nodes.items():
            n = min(per_node, args.conns - per_node * (i - 1))
            pacing = ["--connect-rate", str(args.connect_rate / args.nodes)] if args.connect_rate else []
            benches.append(fluxbench(args.fluxbench, node["addr"], node["port"], pacing + [
                "--conns", str(n), "--src-ips", str(args.src_ips), "--rate", "500", "--size", "64", "--connect-timeout", "120s",
                "--warmup", "1s", "--duration", f"{args.hold}s", "--grace", "3s"], proxy_v2=True))
        ready, deadline = {}, started + 180
        while time.monotonic() < deadline:
            ready = {i: cluster.ready(i) for i in cluster.nodes}
            if sum(ready.values()) >= args.conns or any(b.poll() is not None for b in benches):
                break
            time.sleep(0.25)
        ramp = time.monotonic() - started
        total = sum(ready.values())
        log(f"scale: {total} READY after {ramp:.1f}s")
        time.sleep(8)  # rates over Prometheus's 4 s window, all connections held
        rss = {i: cluster.rss_bytes(i) for i in cluster.nodes}
        ready = {i: cluster.ready(i) for i in cluster.nodes}
        at = time.time()
        row = []
        for title, legend, expr in cluster_row_expressions():
            values = prom.api.query(expr, at)
            row.append({"panel": title, "series": legend, "expr": expr,
                        "values": [{"labels": m, "value": v} for m, v in values]})
        results = [finish(b, 300) for b in benches]
        return {
            "conns": args.conns, "nodes": args.nodes, "connect_rate": args.connect_rate,
            "src_ips": args.src_ips, "hold": args.hold, "ready": ready, "ramp_seconds": ramp,
            "handshakes_per_second": total / ramp if ramp > 0 else None,
            "rss_idle_bytes": rss_idle, "rss_bytes": rss,
            "rss_per_connection_bytes": {i: (rss[i] - rss_idle[i]) / ready[i] for i in ready if ready[i]},
            "cluster_row": row,
            "fluxbench": [{"ready": r["connections"]["ready"], "errors": r["errors"],
                           "connect_failed": r["connections"]["connect_failed"],
                           "handshake_failed": r["connections"]["handshake_failed"],
                           "frames_lost": r["frames"]["lost"]} for r in results],
            "load_average": [load_start, load_average()],
        }
    finally:
        for b in benches:
            if b.poll() is None:
                b.kill()
                b.wait()
        if prom:
            prom.stop()
        stop_cluster(cluster)


def scale_report(s):
    out = [f"### Scale: {s['conns']:,} connections held by {s['nodes']} nodes", "",
           f"`python3 bench/cluster.py --profile scale --nodes {s['nodes']} --conns {s['conns']}"
           f" --src-ips {s['src_ips']} --hold {s['hold']}"
           + (f" --connect-rate {s['connect_rate']:g}" if s["connect_rate"] else "") + "`. "
           "Straight to the nodes, one fluxbench per node with `--proxy-v2`: through HAProxy each "
           "connection takes two of its descriptors and one process is capped at 20,000 here, so "
           "the balancer would stop at 10,000. Load average (1 min) "
           f"{s['load_average'][0]:.2f} -> {s['load_average'][1]:.2f}.", "",
           f"- READY: {sum(s['ready'].values()):,} of {s['conns']:,} in {s['ramp_seconds']:.1f} s: "
           f"**{s['handshakes_per_second']:,.0f} handshakes/s** (first connect to last READY, all nodes)",
           "- fluxbench: " + ", ".join(
               f"{r['ready']} ready / {r['errors']} errors" for r in s["fluxbench"]), "",
           "| node | READY | RSS idle | RSS held | RSS per connection |", "|---|---|---|---|---|"]
    for i in sorted(s["ready"], key=int):
        per = s["rss_per_connection_bytes"].get(i)
        out.append(f"| node-{i} | {s['ready'][i]:,} | {s['rss_idle_bytes'][i] / 2**20:.1f} MiB | "
                   f"{s['rss_bytes'][i] / 2**20:.1f} MiB | {per:,.0f} B |" if per else f"| node-{i} | 0 | | | |")
    out += ["", "The dashboard's Cluster row, as Prometheus answered it while the connections were held:", "",
            "| panel | series | value(s) |", "|---|---|---|"]
    for r in s["cluster_row"]:
        if len(r["values"]) > 3 and all(x["value"] == 0 for x in r["values"]):
            out.append(f"| {r['panel']} | {r['series']} | 0 in all {len(r['values'])} series |")
            continue
        shown = ", ".join(
            (" ".join(f"{v}" for k, v in sorted(x["labels"].items())) + "=" if x["labels"] else "")
            + f"{x['value']:.6g}" for x in r["values"]) or "(no data)"
        out.append(f"| {r['panel']} | {r['series']} | {shown} |")
    return "\n".join(out)


# -------------------------------------------------------------- balancer

LOADS = {
    "closed": ["--conns", "100", "--window", "16", "--size", "64"],
    "open": ["--conns", "100", "--rate", "10000", "--size", "64"],
}


def balancer(args, workdir):
    cluster = start_cluster(args.gateway, 1)
    try:
        node = cluster.nodes[1]
        paths = {"haproxy": ("127.0.0.1", cluster.port), "direct": (node["addr"], node["port"])}
        rounds = []
        load_start = load_average()
        for r in range(args.rounds):
            for load, load_args in LOADS.items():
                order = ("haproxy", "direct") if r % 2 == 0 else ("direct", "haproxy")
                for path in order:
                    host, port = paths[path]
                    timing = ["--warmup", "1s", "--duration", f"{args.seconds}s", "--grace", "2s"]
                    res = finish(fluxbench(args.fluxbench, host, port, load_args + timing,
                                           proxy_v2=path == "direct"), 120)
                    lat = res["latency_us"] or {}
                    rounds.append({"round": r + 1, "load": load, "path": path,
                                   "frames_per_second": res["throughput"]["frames_per_second"],
                                   "p50_us": lat.get("p50"), "p99_us": lat.get("p99"),
                                   "errors": res["errors"]})
                    log(f"balancer round {r + 1} {load} {path}: {rounds[-1]}")
        return {"rounds": rounds, "seconds": args.seconds, "round_count": args.rounds, "load_average": [load_start, load_average()]}
    finally:
        stop_cluster(cluster)


def balancer_report(b):
    out = ["### Cost of the balancer: through HAProxy vs straight to the node", "",
           f"`python3 bench/cluster.py --profile balancer --rounds {b['round_count']} --seconds {b['seconds']}`. One node "
           "behind HAProxy 2.6 (1 thread); the same fluxbench load through HAProxy and straight to the "
           f"node (`--proxy-v2`: both carry the header), {b['seconds']} s measured each, alternating "
           f"order per round. Load average (1 min) {b['load_average'][0]:.2f} -> {b['load_average'][1]:.2f}.",
           "", "| round | load | path | frames/s | p50 | p99 | errors |", "|---|---|---|---|---|---|---|"]
    for r in b["rounds"]:
        out.append(f"| {r['round']} | {r['load']} | {r['path']} | {r['frames_per_second']:,.0f} | "
                   f"{r['p50_us']:,.0f} us | {r['p99_us']:,.0f} us | {r['errors']} |")
    out += ["", "| load | frames/s HAProxy / direct | p50 HAProxy / direct | p99 HAProxy / direct |",
            "|---|---|---|---|"]
    for load in LOADS:
        ratios = {k: [] for k in ("frames_per_second", "p50_us", "p99_us")}
        for n in {r["round"] for r in b["rounds"]}:
            via = next(r for r in b["rounds"] if r["round"] == n and r["load"] == load and r["path"] == "haproxy")
            direct = next(r for r in b["rounds"] if r["round"] == n and r["load"] == load and r["path"] == "direct")
            for k in ratios:
                if via[k] and direct[k]:
                    ratios[k].append(via[k] / direct[k])
        med = {k: statistics.median(v) if v else float("nan") for k, v in ratios.items()}
        out.append(f"| {load} | {med['frames_per_second']:.2f} | {med['p50_us']:.2f} | {med['p99_us']:.2f} |")
    out.append("")
    out.append("(medians of the per-round ratios)")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", default=str(ROOT / "build" / "gateway" / "flux-gateway"))
    ap.add_argument("--fluxbench", default=str(ROOT / "build" / "bench" / "fluxbench"))
    ap.add_argument("--profile", choices=("scale", "balancer", "all"), default="all")
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--conns", type=int, default=100_000)
    ap.add_argument("--connect-rate", type=float, default=0,
                    help="scale: new connections per second over all nodes (default: all at once)")
    ap.add_argument("--src-ips", type=int, default=8,
                    help="scale: each fluxbench spreads its connections over 127.0.0.1..K")
    ap.add_argument("--hold", type=int, default=60, help="seconds fluxbench holds the scale connections")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="measured seconds per balancer round")
    ap.add_argument("--json", help="write the raw figures here")
    args = ap.parse_args()
    for binary in (args.gateway, args.fluxbench):
        if not os.access(binary, os.X_OK):
            sys.exit(f"cluster.py: {binary} is not built (bash scripts/build.sh)")
    figures, report = {}, []
    with tempfile.TemporaryDirectory(prefix="flux-cluster-bench.") as workdir:
        if args.profile in ("scale", "all"):
            figures["scale"] = scale(args, workdir)
            report.append(scale_report(figures["scale"]))
        if args.profile in ("balancer", "all"):
            figures["balancer"] = balancer(args, workdir)
            report.append(balancer_report(figures["balancer"]))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    print("\n\n".join(report))


if __name__ == "__main__":
    main()
