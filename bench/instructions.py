#!/usr/bin/env python3
"""Instructions per echoed frame of a server, counted by Valgrind's callgrind:
a cost figure that does not move with the machine's load.

    bench/instructions.py --fluxbench BIN --server NAME=BIN[,FLAG,...] [--server ...]
                          [--rounds 2] [--seconds 10] [--conns 20] [--rate N]
                          [--only FUNCTION] [--json FILE]

On a shared 2-core machine a throughput round moves by 10 % with whatever
else runs, so a cost of 0.5 % or 1.5 % (bench/run profiles 5 and 10) cannot
be seen in frames/s. Counting instructions can: each server runs under
`valgrind --tool=callgrind` (all threads counted: the reactor, the metrics
thread, the sampler and the stall watchdog), fluxbench drives the
closed-loop load of profile 2 at a size Valgrind keeps up with (--conns x
window 16 x 64 B) or, with --rate, an open loop whose frames come one per
read (the per-frame count then does not depend on how many frames a read
happens to batch, which moves with timing), and over a measured window (callgrind_control --zero at
its start, --dump at its end) the instructions executed are divided by the
echoes fluxbench received in it (its count for each whole second inside
the window, times the window). Servers
alternate, --rounds each. Prints each server's instructions per frame and,
for every pair, the ratio to the first server named. Standard library only;
needs valgrind (Debian `valgrind`).
"""

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import ab
import server_process

LOAD = ["--size", "64", "--warmup", "0s", "--grace", "10s", "--connect-timeout", "20s"]


def callgrind_control(*args):
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=60)


def instructions_in(dump_dir):
    """Total Ir of the newest dump of every thread (callgrind --separate-threads)."""
    total = 0
    for path in glob.glob(os.path.join(dump_dir, "cg.out*")):
        if not path.rsplit(".", 1)[-1].isdigit() and "-" not in os.path.basename(path):
            continue
        with open(path) as f:
            for line in f:
                if line.startswith("summary:"):
                    total += int(line.split()[1])
    return total


def measure(fluxbench, argv, conns, seconds, rate, only=None):
    shape = ["--rate", str(rate)] if rate else ["--window", "16"]
    with tempfile.TemporaryDirectory() as dump_dir:
        out = os.path.join(dump_dir, "cg.out")
        server = server_process.start(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--dump-instr=no",
             *([f"--toggle-collect={only}"] if only else []),
             f"--callgrind-out-file={out}", *argv], timeout=120)
        try:
            bench = subprocess.Popen(
                [fluxbench, "--port", str(server.port), "--conns", str(conns), *shape, *LOAD,
                 "--duration", f"{seconds + 20}s", "--json", "--no-progress"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            result = {}
            reader = threading.Thread(target=lambda: result.update(json.loads(bench.communicate()[0])))
            reader.start()
            time.sleep(8)  # connections and handshakes done, the loop warm
            pid = str(server.pid)
            callgrind_control("--zero", pid)
            t0 = time.time()
            time.sleep(seconds)
            callgrind_control("--dump", pid)
            t1 = time.time()
            reader.join(seconds + 120)
            if bench.returncode != 0:
                raise RuntimeError(f"fluxbench exited {bench.returncode}: {result.get('failures')}")
            ir = instructions_in(dump_dir)
        finally:
            server.stop(timeout=60)
    # Echoes in the window: fluxbench's count for each whole second inside it
    # (the same method for every server, with metrics or without).
    start = result["measure"]["start_unix_seconds"]
    inside = [s["echoes_per_second"] for s in result["seconds"]
              if t0 <= start + s["elapsed_seconds"] - 1 and start + s["elapsed_seconds"] <= t1]
    if not inside:
        raise RuntimeError("no whole second of fluxbench inside the measured window")
    frames = statistics.mean(inside) * (t1 - t0)
    if frames <= 0:
        raise RuntimeError("no frame echoed in the measured window")
    return ir / frames, frames


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fluxbench", required=True)
    ap.add_argument("--server", action="append", required=True, help="NAME=BIN[,FLAG,...]")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=20)
    ap.add_argument("--rate", type=int, default=0,
                    help="open loop at this many frames/s in total (default: closed loop, window 16)")
    ap.add_argument("--only", metavar="FUNCTION",
                    help="count only inside this function and what it calls (callgrind --toggle-collect, "
                         "e.g. '*Connection::on_readable_cb*'): the same code path every frame")
    ap.add_argument("--json")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            sys.exit(f"instructions.py: {tool} not found (apt-get install valgrind)")
    servers = ab.parse_servers(args.server, "instructions.py")
    names = list(servers)
    per_frame = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            ir, frames = measure(args.fluxbench, servers[name], args.conns, args.seconds, args.rate, args.only)
            per_frame[name].append(ir)
            print(f"instructions: round {r + 1} {name}: {ir:,.0f} per frame ({frames:,.0f} frames)",
                  file=sys.stderr, flush=True)
    first = names[0]
    load = f"open loop at {args.rate} frames/s" if args.rate else "window 16, closed loop"
    inside = f"; counted inside {args.only} only" if args.only else ""
    print(f"{args.rounds} rounds; {args.conns} connections x 64 B, {load}, under callgrind{inside}; "
          f"{args.seconds} s measured per round\n")
    print("| server | instructions per frame (median) | per round | vs " + first + " |\n|---|---|---|---|")
    base = statistics.median(per_frame[first])
    for name in names:
        m = statistics.median(per_frame[name])
        print(f"| {name} | {m:,.0f} | " + ", ".join(f"{v:,.0f}" for v in per_frame[name])
              + f" | {m / base - 1:+.2%} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(per_frame, f, indent=2)


if __name__ == "__main__":
    main()
