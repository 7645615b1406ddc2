#!/usr/bin/env python3
"""bench/store.py (docs/benchmarks.md, "Session store") runs end to end on
this build, shortened: one alternating round of the throughput profile
(1 s measured) and the memory profile with 50 sessions. Checks that each
figure the report prints is a measurement: both stores echoed, the Redis
gateway really went through Redis (commands sent, a round trip, Redis CPU)
without falling back, and Redis holds at least the payload bytes of the 256
frames each session keeps. The kill profile is CTest session_store's
test_store_cluster.py. Skips when redis-server is not installed."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATEWAY = os.environ.get("FLUX_GATEWAY_BIN", "")
FLUXBENCH = os.environ.get("FLUX_FLUXBENCH_BIN", "")


def store_bench(*args):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "store.json")
        run = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "store.py"), "--gateway", GATEWAY,
                              "--fluxbench", FLUXBENCH, "--json", out, *args],
                             capture_output=True, text=True, timeout=240)
        assert run.returncode == 0, f"store.py exited {run.returncode}: {run.stderr[-2000:]}"
        with open(out) as f:
            return json.load(f), run.stdout


@unittest.skipUnless(shutil.which("redis-server"), "redis-server is not installed")
class StoreBench(unittest.TestCase):
    def test_throughput_round_measures_both_stores(self):
        results, report = store_bench("--profile", "throughput", "--rounds", "1", "--seconds", "1")
        (row,) = results["throughput"]["rounds"]
        memory, redis = row["memory"], row["redis"]
        for name, r in (("memory", memory), ("redis", redis)):
            self.assertGreater(r["frames_per_second"], 1000, name)
            self.assertGreater(r["p99_us"], r["p50_us"] * 0.99, name)
            self.assertEqual(r["fallbacks"], 0, name)
        self.assertEqual(memory["store_commands"], 0)
        self.assertGreater(redis["store_commands"], 0)
        self.assertGreater(redis["store_rtt_p50_us"], 0)
        self.assertGreater(redis["redis_cpu_percent"], 0)
        (ratio,) = results["throughput"]["ratios"]["frames_per_second"]
        self.assertAlmostEqual(ratio, redis["frames_per_second"] / memory["frames_per_second"], places=6)
        self.assertIn("redis / memory (median of per-round ratios)", report)

    def test_memory_profile_counts_the_kept_frames(self):
        results, report = store_bench("--profile", "memory", "--sessions", "50")
        m = results["memory"]
        self.assertEqual(m["sessions"], 50)
        self.assertGreater(m["empty"], m["base"])
        per_session_full = (m["full"] - m["base"]) / m["sessions"]
        self.assertGreaterEqual(per_session_full, m["frames_kept"] * 64, "less than the kept payload bytes")
        self.assertGreaterEqual(m["detached"], m["full"] * 0.95)
        self.assertIn("Redis memory per session", report)


if __name__ == "__main__":
    unittest.main()
