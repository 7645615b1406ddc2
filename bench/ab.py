#!/usr/bin/env python3
"""A/B of gateway builds: the same closed-loop load on each, alternating rounds.

    bench/ab.py --fluxbench BIN --server NAME=BIN [--server NAME=BIN ...]
                [--rounds 5] [--seconds 5] [--ratio A/B ...] [--json FILE]

Each round starts every server in turn (`BIN --port 0`, reading its
`listening port=<p> ...` line; extra flags after the path, comma-separated:
NAME=BIN,--reactors,1), runs fluxbench against it (100 connections x window
16 x 64 B, 1 s warm-up, --seconds measured: profile 2 of bench/run) and
stops it; the order of the servers rotates each round so that none is always
first. Prints each round's frames/s and p99, and for every --ratio A/B the
median of the per-round ratios of frames/s (what bench/run reports for
profiles 2 and 5). Use it to show that a change costs nothing: old and new
build (and each built with -DFLUX_METRICS=OFF for the metrics cost), plus
the baseline echo server (bench/baseline) as the speed of light.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

import server_process

LOAD = ["--conns", "100", "--window", "16", "--size", "64", "--warmup", "1s", "--grace", "2s"]


def measure(fluxbench, port, seconds):
    run = subprocess.run([fluxbench, "--port", str(port), *LOAD, "--duration", f"{seconds}s", "--json",
                          "--no-progress"], capture_output=True, text=True, timeout=seconds + 60)
    result = json.loads(run.stdout)
    if run.returncode != 0 or result["errors"]:
        raise RuntimeError(f"fluxbench failed ({run.returncode}): {result.get('failures')}")
    return result["throughput"]["frames_per_second"], (result["latency_us"] or {}).get("p99")


def parse_servers(specs, tool):
    """{NAME: argv} from NAME=BIN[,FLAG,...] specs; exits if a BIN is not executable."""
    servers = {}
    for spec in specs:
        name, _, rest = spec.partition("=")
        argv = rest.split(",")
        if not os.access(argv[0], os.X_OK):
            sys.exit(f"{tool}: {argv[0]} is not executable")
        servers[name] = argv
    return servers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fluxbench", required=True)
    ap.add_argument("--server", action="append", required=True, help="NAME=BIN[,FLAG,...]")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--ratio", action="append", default=[], help="A/B: median per-round frames/s ratio")
    ap.add_argument("--json")
    args = ap.parse_args()
    servers = parse_servers(args.server, "ab.py")
    names = list(servers)
    rounds = []
    load_start = os.getloadavg()[0]
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        row = {}
        for name in order:
            server = server_process.start(servers[name])
            try:
                row[name] = measure(args.fluxbench, server.port, args.seconds)
            finally:
                server.stop()
            print(f"round {r + 1} {name}: {row[name][0]:,.0f} frames/s, p99 {row[name][1]:,.0f} us",
                  file=sys.stderr, flush=True)
        rounds.append(row)
    print(f"Load average (1 min) {load_start:.2f} -> {os.getloadavg()[0]:.2f}; {args.rounds} rounds of "
          f"{args.seconds} s, 100 connections x window 16 x 64 B, closed loop\n")
    print("| round | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, row in enumerate(rounds, 1):
        print(f"| {i} | " + " | ".join(f"{row[n][0]:,.0f} (p99 {row[n][1]:,.0f} us)" for n in names) + " |")
    figures = {"rounds": rounds, "ratios": {}}
    if args.ratio:
        print("\n| ratio (frames/s) | median | per round |\n|---|---|---|")
    for ratio in args.ratio:
        a, b = ratio.split("/")
        per_round = [row[a][0] / row[b][0] for row in rounds]
        figures["ratios"][ratio] = per_round
        print(f"| {a} / {b} | {statistics.median(per_round):.3f} | "
              + ", ".join(f"{x:.3f}" for x in per_round) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
