#!/usr/bin/env python3
"""The gateway against the speed of light: the four ratios of bench/run's
`speed` profile.

    bench/speed.py --build-dir DIR --metrics-off-build-dir DIR
                   [--rounds 5] [--seconds 5] [--seed-conns 10000]
                   [--seed-seconds 20] [--seed-rounds 2] [--json FILE]

Throughput, in alternating rounds (the order rotates each round), the
closed-loop load of profile 2 (100 connections x window 16 x 64 B) on:
  bare       flux-echo-baseline (bench/baseline/echo_server.c)
  gateway    flux-gateway, defaults (replay on)
  no-replay  flux-gateway --replay-frames 0
  no-metrics flux-gateway built with -DFLUX_METRICS=OFF, defaults
Then the seed load (--seed-conns connections x 1 frame/s, 64 B, open loop)
on bare and gateway, alternating: the server's CPU (utime + stime from
/proc/<pid>/stat) over fluxbench's measured window.

Prints, with the load average before and after, the four ratios (medians of
the per-round ratios):
  gateway / bare          frames/s   (target >= 0.97)
  no-replay / bare        frames/s
  seed CPU gateway / bare             (target <= 1.05)
  metrics cost            1 - gateway / no-metrics  (target < 1.5 %)
Standard library only.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

import ab
import server_process

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class CpuSampler:
    """(unix time, CPU seconds) of a process, four times a second."""

    def __init__(self, pid):
        self.pid, self.samples, self.done = pid, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.wait(0.25):
            try:
                self.samples.append((time.time(), cpu_seconds(self.pid)))
            except OSError:
                return

    def share(self, start, end):
        """CPU used over [start, end] as a share of one core, from the first
        and last samples inside it."""
        self.done.set()
        self.thread.join()
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            raise RuntimeError("too few CPU samples inside the measured window")
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return (c1 - c0) / (t1 - t0)


def seed_cpu(fluxbench, argv, conns, seconds):
    server = server_process.start(argv)
    try:
        sampler = CpuSampler(server.pid)
        run = subprocess.run(
            [fluxbench, "--port", str(server.port), "--conns", str(conns), "--rate", str(conns),
             "--size", "64", "--connect-rate", "5000", "--warmup", "5s",
             "--duration", f"{seconds}s", "--json", "--no-progress"],
            capture_output=True, text=True, timeout=seconds + 120)
        result = json.loads(run.stdout)
        if run.returncode != 0 or result["errors"]:
            raise RuntimeError(f"fluxbench failed ({run.returncode}): {result.get('failures')}")
        measure = result["measure"]
        return sampler.share(measure["start_unix_seconds"], measure["end_unix_seconds"])
    finally:
        server.stop()


def rotated(names, r):
    return names[r % len(names):] + names[:r % len(names)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--metrics-off-build-dir", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--seed-conns", type=int, default=10000)
    ap.add_argument("--seed-seconds", type=int, default=20)
    ap.add_argument("--seed-rounds", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it

    gateway = f"{args.build_dir}/gateway/flux-gateway"
    fluxbench = f"{args.build_dir}/bench/fluxbench"
    servers = {
        "bare": [f"{args.build_dir}/bench/flux-echo-baseline"],
        "gateway": [gateway],
        "no-replay": [gateway, "--replay-frames", "0"],
        "no-metrics": [f"{args.metrics_off_build_dir}/gateway/flux-gateway"],
    }
    for argv in servers.values():
        if not os.access(argv[0], os.X_OK):
            sys.exit(f"speed.py: {argv[0]} is not executable")
    load = [os.getloadavg()[0]]

    rounds = []
    for r in range(args.rounds):
        row = {}
        for name in rotated(list(servers), r):
            server = server_process.start(servers[name])
            try:
                row[name] = ab.measure(fluxbench, server.port, args.seconds)[0]
            finally:
                server.stop()
        print(f"speed: round {r + 1}: " + ", ".join(f"{n} {row[n]:,.0f}" for n in servers) + " frames/s",
              file=sys.stderr, flush=True)
        rounds.append(row)

    seed = []
    for r in range(args.seed_rounds):
        row = {}
        for name in rotated(["bare", "gateway"], r):
            row[name] = seed_cpu(fluxbench, servers[name], args.seed_conns, args.seed_seconds)
        print(f"speed: seed round {r + 1}: bare {row['bare']:.1%}, gateway {row['gateway']:.1%} of a core",
              file=sys.stderr, flush=True)
        seed.append(row)
    load.append(os.getloadavg()[0])

    def per_round(rows, a, b):
        return [row[a] / row[b] for row in rows]

    ratios = {
        "gateway / bare (frames/s)": per_round(rounds, "gateway", "bare"),
        "no-replay / bare (frames/s)": per_round(rounds, "no-replay", "bare"),
        "seed CPU gateway / bare": per_round(seed, "gateway", "bare"),
        "metrics on / off (frames/s)": per_round(rounds, "gateway", "no-metrics"),
    }
    print(f"\nLoad average (1 min) {load[0]:.2f} -> {load[1]:.2f}; {args.rounds} throughput rounds of "
          f"{args.seconds} s (100 connections x window 16 x 64 B, closed loop); {args.seed_rounds} seed "
          f"rounds of {args.seed_seconds} s ({args.seed_conns} connections x 1 frame/s)\n")
    print("| ratio | median | per round | target |\n|---|---|---|---|")
    targets = {"gateway / bare (frames/s)": ">= 0.97", "seed CPU gateway / bare": "<= 1.05",
               "metrics on / off (frames/s)": ">= 0.985 (cost < 1.5 %)"}
    for name, values in ratios.items():
        print(f"| {name} | {statistics.median(values):.3f} | "
              + ", ".join(f"{v:.3f}" for v in values) + f" | {targets.get(name, '')} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load": load, "rounds": rounds, "seed": seed,
                       "ratios": {k: {"median": statistics.median(v), "per_round": v}
                                  for k, v in ratios.items()}}, f, indent=2)


if __name__ == "__main__":
    main()
