"""The fleet's observability proven on a real cluster and a real Prometheus.

A 3-node cluster (scripts/cluster.sh: real HAProxy) is scraped every second
by a real Prometheus whose "flux-cluster" job is prometheus/prometheus.yml's
own: the same relabelling, with its DNS discovery replaced by static targets
that carry the name DNS would have given (node-1..3, haproxy). It loads
prometheus/cluster-alerts.yml. Under a known load through HAProxy (held
connections echoing, resumes), every expression of the dashboard's Cluster
row is evaluated through the HTTP API and checked against what the test
knows; then every alert expression is evaluated healthy (quiet), and again
after a node is killed (FluxClusterNodeDown and FluxClusterNodeOutOfRotation
name exactly that node).
"""

import json
import math
import os
import re
import signal
import threading
import time

import pytest
import yaml
from prometheus_support import Prometheus, cluster_job

from test_cluster import ROOT, dial, echo, hello, node_of, recv_frame, resume, session_with_echoes
from test_cluster import cluster, wait_for  # noqa: F401 - cluster is a fixture

HELD = 30  # connections through HAProxy for the whole test: 10 per node
RATE_INTERVAL = "4s"  # what Grafana's $__rate_interval is for a 1 s scrape
SCRAPE_WAIT = 30  # seconds for Prometheus to see a change


@pytest.fixture
def prometheus(cluster, tmp_path):
    nodes = {i: f"{n['addr']}:{n['mport']}" for i, n in cluster.nodes.items()}
    job = cluster_job(nodes, f"127.0.0.1:{cluster.haproxy_metrics_port}")
    names = [n for sd in job.get("static_configs", []) for n in [sd["labels"]["__meta_dns_name"]]]
    assert sorted(names) == ["haproxy", "node-1", "node-2", "node-3"], f"prometheus.yml's job scrapes {names}"
    try:
        prom = Prometheus(tmp_path, job, [ROOT / "prometheus" / "cluster-alerts.yml"])
    except FileNotFoundError as e:
        pytest.fail(str(e))
    try:
        assert prom.wait_for_targets(4, SCRAPE_WAIT), "Prometheus did not scrape 3 nodes and HAProxy"
        yield prom.api
    finally:
        prom.stop()


class HeldLoad:
    """HELD connections through HAProxy, each echoing a frame every 50 ms."""

    def __init__(self, cluster):
        self.socks = [dial(cluster) for _ in range(HELD)]
        self.sids = [hello(s) for s in self.socks]
        self.stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        n = 0
        while not self.stop.wait(0.05):
            for s in self.socks:
                try:
                    echo(s, [b"held-%d" % n])
                except (OSError, EOFError, AssertionError) as e:
                    self.errors.append(repr(e))
                    return
            n += 1

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        for s in self.socks:
            s.close()


def dashboard_cluster_panels():
    with open(ROOT / "grafana" / "dashboards" / "flux-gateway.json") as f:
        dash = json.load(f)
    rows = [p for p in dash["panels"] if p.get("type") == "row" and p.get("title") == "Cluster"]
    assert len(rows) == 1, "the dashboard has no Cluster row"
    return {p["id"]: p for p in rows[0]["panels"]}


def cluster_rules():
    with open(ROOT / "prometheus" / "cluster-alerts.yml") as f:
        return {r["alert"]: r["expr"] for g in yaml.safe_load(f)["groups"] for r in g["rules"]}


def test_cluster_row_and_alerts_on_a_real_cluster(cluster, prometheus):
    load = HeldLoad(cluster)
    try:
        per_node = {i: 0 for i in cluster.nodes}
        for sid in load.sids:
            per_node[node_of(sid)] += 1
        # Resumes through HAProxy, each on the session's own node: 2 ok per
        # node, and one unknown.
        done = {i: 0 for i in cluster.nodes}
        deadline = time.monotonic() + 30
        while min(done.values()) < 2:
            assert time.monotonic() < deadline, f"resumes reached only {done}"
            sid, payloads = session_with_echoes(cluster, 3)
            with dial(cluster) as sock:
                assert resume(sock, sid, 1) == f"FLUX_READY {sid} 3"
                assert [recv_frame(sock) for _ in payloads[1:]] == payloads[1:]
            done[node_of(sid)] += 1
        with dial(cluster) as sock:
            assert resume(sock, "0001" + "0" * 28, 0) == "FLUX_INVALID session-unknown"
        resumes_at = time.time()

        panels = dashboard_cluster_panels()
        assert set(panels) == set(range(40, 50)), f"Cluster row panels {sorted(panels)}"

        def evaluate(pid, ref, at=None):
            target = next(t for t in panels[pid]["targets"] if t["refId"] == ref)
            expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
            values = prometheus.query(expr, at)
            assert all(math.isfinite(v) for _, v in values), f"panel {pid} {ref}: {values}"
            print(f"panel {pid} {ref} {panels[pid]['title']!r}: {values}")
            return values

        def by(values, label):
            return {m.get(label): v for m, v in values}

        # Wait until every node's ready count is scraped as the test holds it.
        nodes = {f"node-{i}" for i in cluster.nodes}
        wait_for(lambda: sum(v for _, v in evaluate(44, "A")) == HELD, SCRAPE_WAIT, "ready per node = HELD")
        wait_for(lambda: evaluate(43, "A") == [({}, HELD)], SCRAPE_WAIT, "HAProxy's frontend sessions")
        wait_for(lambda: len([v for _, v in evaluate(45, "A") if v > 0]) == 3, SCRAPE_WAIT, "frames on every node")

        assert evaluate(40, "A") == [({}, 3.0)] and evaluate(40, "B") == [({}, 3.0)]
        ready = by(evaluate(44, "A"), "instance")
        assert set(ready) == nodes and ready == {f"node-{i}": float(c) for i, c in per_node.items()}
        [(_, balance)] = evaluate(41, "A")
        assert math.isclose(balance, max(per_node.values()) / (HELD / 3), rel_tol=1e-9), (balance, per_node)
        assert balance < 1.5, f"leastconn left the cluster unbalanced: {per_node}"
        assert evaluate(42, "A") == [({}, 3.0)] and evaluate(42, "B") == [({}, 3.0)]
        assert set(by(evaluate(45, "A"), "instance")) == nodes

        # Resumes per node by result, at a moment the resumes are in the window.
        wait_for(lambda: time.time() > resumes_at + 2, 5, "two more scrapes")
        rates = evaluate(46, "A", at=resumes_at + 2)
        ok = {m["instance"]: v for m, v in rates if m["result"] == "ok"}
        assert set(ok) == nodes and all(v > 0 for v in ok.values()), rates
        assert any(m["result"] == "unknown" and v > 0 for m, v in rates), rates

        assert by(evaluate(47, "A"), "server") == {f"node{i}": 1.0 for i in cluster.nodes}
        sessions = by(evaluate(48, "A"), "server")
        assert sessions == {f"node{i}": float(c) for i, c in per_node.items()}, (sessions, per_node)
        for ref in ("A", "B", "C"):
            assert [v for _, v in evaluate(49, ref)] == [0.0], f"connect errors/retries/redispatches ({ref})"

        # Alerts: all rules healthy and quiet on a healthy cluster.
        rules = cluster_rules()
        loaded = {r["name"]: r for g in prometheus.api("rules")["groups"] for r in g["rules"]}
        assert set(loaded) == set(rules)
        wait_for(lambda: all(r.get("health") == "ok" for g in prometheus.api("rules")["groups"] for r in g["rules"]),
                 SCRAPE_WAIT, "every rule evaluated")
        for name, expr in rules.items():
            assert prometheus.query(expr) == [], f"{name} fires on a healthy cluster"
        # The imbalance rule's operands have data (a typo would leave it silent forever).
        imbalance = rules["FluxClusterImbalance"]
        ratio, total = imbalance.split("> 1.5")[0], re.split(r"\s+and\s+", imbalance)[1].split(">")[0]
        assert prometheus.query(ratio)[0][1] == balance
        assert prometheus.query(total)[0][1] == HELD
        assert load.errors == []
    finally:
        load.close()

    # A node killed: named by the node-down rule (Prometheus's view) and by
    # the out-of-rotation rule (HAProxy's view), and by no other.
    victim = 2
    os.kill(cluster.nodes[victim]["pid"], signal.SIGKILL)
    wait_for(lambda: prometheus.query(rules["FluxClusterNodeDown"]), SCRAPE_WAIT, "FluxClusterNodeDown's expression")
    down = prometheus.query(rules["FluxClusterNodeDown"])
    assert [m["instance"] for m, _ in down] == [f"node-{victim}"], down
    wait_for(lambda: prometheus.query(rules["FluxClusterNodeOutOfRotation"]), SCRAPE_WAIT,
             "FluxClusterNodeOutOfRotation's expression")
    out = prometheus.query(rules["FluxClusterNodeOutOfRotation"])
    assert [(m["server"], m["state"]) for m, _ in out] == [(f"node{victim}", "DOWN")], out
    assert prometheus.query(rules["FluxClusterBalancerDown"]) == []
    assert evaluate(40, "A") == [({}, 2.0)] and evaluate(40, "B") == [({}, 3.0)]
    assert evaluate(42, "A") == [({}, 2.0)]
