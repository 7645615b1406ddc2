#!/usr/bin/env python3
"""bench/report.py renders a report from a synthetic results directory: every
block of bench/report/template.md gets its figures (no KeyError), the kept
sections (bench/report/*.md) come through verbatim in a full run, and a partial
run has only its own sections. Standard library only; no gateway needed."""

import json
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import report  # noqa: E402

PROFILES = "seed throughput curve scale metrics scrape churn replay scaling flood speed".split()


def fluxbench_result(fps, p99):
    seconds = [{"p99_us": p99 * (0.5 + i / 10), "send_lag_p99_us": 100.0 * i} for i in range(10)]
    return {
        "result": "ok",
        "errors": 0,
        "config": {"rate_per_second": fps},
        "connections": {"ready": 100, "connect_failed": 0, "handshake_failed": 0},
        "measure": {"seconds": 5.0},
        "throughput": {"frames_per_second": fps},
        "latency_us": {"count": 1000, "p50": 50.0, "p90": 300.0, "p99": p99, "p999": 2 * p99, "max": 3 * p99},
        "send_lag_us": {"p99": 250.0},
        "seconds": seconds,
        "server": {"cpu_percent": 45.0, "loop_lag_p99_us_median": 99.0, "buffer_allocations_measured": 0},
        "client": {"cpu_percent": 42.0},
        "frames": {"sent": 1234, "mismatched": 0, "lost": 0},
        "churn": {"drops": 10, "resumes": 10, "resume_failures": 0, "replayed_frames": 40, "resent_frames": 0,
                  "resume_latency_us": {"p50": 500.0, "p99": 900.0, "max": 1000.0}},
    }


def write_results(directory, profiles):
    names = ["seed", "scale", "churn", "replay-memory"]
    for i in (1, 2):
        names += [f"{p}-{i}" for p in ("tp-gateway", "tp-baseline", "mo-on", "mo-off", "rp-on", "rp-off")]
        names += [f"scrape-quiet-{i}", f"scrape-loaded-{i}"]
    names += [f"curve-{s}-{p}" for s in ("gateway", "baseline") for p in (50, 100)]
    for n in names:
        with open(os.path.join(directory, n + ".json"), "w") as f:
            json.dump(fluxbench_result(1e6 if "off" in n else 9e5, 800.0), f)
    with open(os.path.join(directory, "speed.md"), "w") as f:
        f.write("| ratio | median | per round | target |\n|---|---|---|---|\n| gateway / bare (frames/s) | 0.990 | 0.990 | >= 0.97 |\n")
    with open(os.path.join(directory, "flood-300.json"), "w") as f:
        json.dump({"flood_seconds": 30, "flooders_connected": 300, "rss_within_96mib_at_s": None,
                   "probe": {"count": 10}, "gateway_up": True}, f)
    state = {
        "scale": "1", "nice": "", "seed_conns": 1000, "rounds": 2, "steps": ["50", "100"], "churn_conns": 100,
        "scale_conns": 1000, "scrape_rounds": 2, "replay_conns": 100, "replay_rate": 1000,
        "scaling_rounds": 1,
        "flood_counts": ["300"], "profiles": profiles, "full": profiles == PROFILES, "rerun_note": "",
        "load_start": "1.0 1.0 1.0", "load_end": "2.0 2.0 2.0", "load": {"seed": "1.0 -> 2.0"},
        "commands": ["fluxbench --port 1"], "capacity": "900000", "machine": "test", "nproc": 2,
        "nofile_hard": "20000", "commit": "abc1234", "uncommitted": False, "date": "2026-12-04 18:00 UTC",
        "results_dir": "build-bench/bench-results", "nometrics_dir": "build-bench/metrics-off",
        "seed": {"cpu": "12.5", "rss0": "1000", "rss1": "1010", "busy": "150", "rss_idle": "900"},
        "idle": {"per_conn": "1500", "rss_idle": "9000", "rss_conns": "10500"},
        "churn": {"gateway_exit": "0"},
        "rpm": {"s_frames_in1": "30000", "s_attached1": "100", "s_replay_memory1": "2457600"},
        "scaling": {"1.throughput.frames_per_second": "900000", "2.throughput.frames_per_second": "800000",
                    "1.util": "90", "1.balance": "60 40|55 45", "1.server.cpu_percent": "95"},
        "scrape_fetch_rates": ["9.9 9.8 0"],
    }
    with open(os.path.join(directory, "state.json"), "w") as f:
        json.dump(state, f)


def render(profiles):
    template = report.Report(report.load_template(os.path.join(ROOT, "bench", "report", "template.md")))
    with tempfile.TemporaryDirectory() as directory:
        write_results(directory, profiles)
        return report.render(template, directory)


class ReportTest(unittest.TestCase):
    def test_full_run_has_every_section_and_the_kept_ones_verbatim(self):
        doc = render(PROFILES)
        headings = ["### 1. Seed", "### 2. Throughput", "### 3. Latency", "### 4. Scale", "### 5. Metrics",
                    "### 6. Scrape", "### 7. Churn", "### 7b. Replay", "### 8. Scaling", "### 9. Flood:",
                    "### 10. Speed of light",
                    "## Targets", "## What this machine", "## Commands"]
        for heading in headings:
            self.assertIn(heading, doc)
        self.assertIn("| gateway / bare (frames/s) | 0.990 | 0.990 | >= 0.97 |", doc)
        for kept in ("cluster.md", "flood-before-after.md", "speed-before-after.md", "store.md"):
            with open(os.path.join(ROOT, "bench", "report", kept)) as f:
                self.assertIn(f.read().strip("\n"), doc)
        self.assertNotIn("${", doc)
        self.assertIn("| 1 seed: p99 < 1 ms | 800 us (median second 800 us) | met |  |", doc)
        self.assertIn("| 5 metrics: cost < 3 % | 10.0 % (per-round ratios 0.900..0.900) | **not met** |", doc)
        # A section's verdict is the targets table's, on the figure as shown (1 - 0.9 = 10.0 %).
        self.assertIn("(1 - the median on/off ratio, 0.900; aim < 10 %: **not met**)", doc)
        self.assertIn("| 7b replay: cost < 10 % | 10.0 % | **not met** |", doc)
        self.assertIn("| 90 % | 60 / 40 conns; 55 % / 45 % of frames |", doc)
        self.assertIn("| 9.9 / 9.8 (0 failed) |", doc)

    def test_partial_run_has_only_its_sections(self):
        doc = render(["churn"])
        self.assertIn("### 7. Churn", doc)
        self.assertNotIn("### 1. Seed", doc)
        self.assertNotIn("### 10. Speed", doc)
        self.assertNotIn("## Targets", doc)
        self.assertNotIn("## Cluster", doc)


if __name__ == "__main__":
    unittest.main()
