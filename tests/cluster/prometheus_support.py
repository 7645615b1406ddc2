"""A real Prometheus scraping a Flux cluster with prometheus.yml's own
"flux-cluster" job, for tests/cluster and bench/cluster.py.

The job's DNS discovery is replaced by static targets that carry the name
DNS would have given (`__meta_dns_name`), so its relabelling runs unchanged.
Stdlib and PyYAML only; every wait has a deadline.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prom:
    """Prometheus's HTTP API: instant queries as [(labels, value)]."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}/api/v1"

    def api(self, path, **params):
        url = f"{self.base}/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                doc = json.loads(r.read())
        except urllib.error.HTTPError as e:
            doc = json.loads(e.read())
        if doc.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]


def cluster_job(node_targets, haproxy_target):
    """prometheus.yml's flux-cluster job for node-i -> node_targets[i]
    ("addr:metrics_port") and haproxy -> haproxy_target."""
    with open(ROOT / "prometheus" / "prometheus.yml") as f:
        jobs = {j["job_name"]: j for j in yaml.safe_load(f)["scrape_configs"]}
    job = dict(jobs["flux-cluster"])
    address = {f"node-{i}": target for i, target in node_targets.items()}
    address["haproxy"] = haproxy_target
    static = []
    for sd in job.pop("dns_sd_configs"):
        for name in sd["names"]:
            if name not in address:
                continue  # prometheus.yml lists node-1..3; a smaller cluster has fewer
            static.append({"targets": [address.pop(name)], "labels": {"__meta_dns_name": name}})
    for name in sorted(address):  # nodes past those prometheus.yml names, named the same way
        static.append({"targets": [address[name]], "labels": {"__meta_dns_name": name}})
    job["static_configs"] = static
    return job


class Prometheus:
    """A Prometheus process (1 s scrapes and rule evaluations) on a free port."""

    def __init__(self, workdir, job, rule_files=()):
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not os.access(binary, os.X_OK):
            raise FileNotFoundError("prometheus is not installed (bash scripts/setup.sh --test installs it)")
        workdir = Path(workdir)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [job],
        }
        path = workdir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        port = free_port()
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={path}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        self.api = Prom(port)

    def wait_for_targets(self, count, timeout):
        """True once `count` targets of the job are up (False at the deadline)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(self.api.query('up{job="flux-cluster"} == 1')) == count:
                    return True
            except (OSError, ValueError, RuntimeError):  # starting: 503, not JSON
                pass
            time.sleep(0.2)
        return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
