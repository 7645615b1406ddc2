"""scripts/cluster.sh end to end: real HAProxy in front of real gateway nodes.

Each test starts `scripts/cluster.sh --nodes 3 --port 0` (FLUX_SKIP_SETUP=1,
FLUX_GATEWAY_BIN from the environment, as CTest sets it) and talks to it over
loopback with fluxclient's blocking codec. Every wait polls a condition under
a deadline; the cluster is stopped with SIGTERM and must exit 0.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients" / "python"))
from fluxclient.codec import recv_frame, send_frame  # noqa: E402

from cluster_support import Cluster, ClusterError  # noqa: E402 - pytest puts this folder on the path

NODES = 3
START_TIMEOUT = 90  # seconds; sanitizer builds start slowly on a busy machine
IO_TIMEOUT = 10


def start_cluster(extra=()):
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (bash scripts/setup.sh installs it)")
    binary = os.environ.get("FLUX_GATEWAY_BIN")
    if not binary:
        pytest.skip("FLUX_GATEWAY_BIN is not set (CTest sets it)")
    try:
        return Cluster.start(binary, NODES, extra, timeout=START_TIMEOUT)
    except ClusterError as e:
        pytest.fail(str(e))


def stop_cluster(cluster):
    rc = cluster.stop(timeout=60)
    if rc is None:
        pytest.fail("cluster.sh did not stop within 60s of SIGTERM")
    assert rc == 0, f"cluster.sh exited {rc} on SIGTERM"
    for node in cluster.nodes.values():
        assert not pid_alive(node["pid"]), f"node pid {node['pid']} outlived cluster.sh"


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def cluster():
    c = start_cluster()
    try:
        yield c
    finally:
        stop_cluster(c)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def dial(cluster):
    sock = socket.create_connection(("127.0.0.1", cluster.port), timeout=IO_TIMEOUT)
    sock.settimeout(IO_TIMEOUT)
    return sock


def hello(sock):
    send_frame(sock, b"FLUX_HELLO 1")
    reply = recv_frame(sock).decode()
    words = reply.split()
    assert len(words) == 3 and words[0] == "FLUX_READY" and words[2] == "0", reply
    return words[1]


def node_of(sid):
    return int(sid[:4], 16)


def echo(sock, payloads):
    for p in payloads:
        send_frame(sock, p)
    for p in payloads:
        assert recv_frame(sock) == p


def resume(sock, sid, last_seq):
    send_frame(sock, f"FLUX_RESUME {sid} {last_seq}".encode())
    return recv_frame(sock).decode()


def session_with_echoes(cluster, n):
    """A detached session on some node with n echoes received: (sid, payloads)."""
    with dial(cluster) as sock:
        sid = hello(sock)
        payloads = [f"{sid}-{j}".encode() for j in range(1, n + 1)]
        echo(sock, payloads)
    return sid, payloads


def test_sessions_spread_over_nodes(cluster):
    socks = []
    try:
        per_node = {i: 0 for i in cluster.nodes}
        for _ in range(300):
            sock = dial(cluster)
            socks.append(sock)
            per_node[node_of(hello(sock))] += 1
        for i, count in per_node.items():
            assert count >= 60, f"node {i} holds {count} of 300 sessions: {per_node}"
    finally:
        for sock in socks:
            sock.close()


def test_resume_lands_on_the_node_holding_the_session(cluster):
    n, k = 5, 2
    sessions = [session_with_echoes(cluster, n) for _ in range(30)]
    assert {node_of(sid) for sid, _ in sessions} == set(cluster.nodes)
    for sid, payloads in sessions:
        with dial(cluster) as sock:
            assert resume(sock, sid, k) == f"FLUX_READY {sid} {n}"
            for p in payloads[k:]:
                assert recv_frame(sock) == p
            echo(sock, [b"after-resume"])


def test_takeover_through_haproxy(cluster):
    seen = set()
    deadline = time.monotonic() + 60
    while seen != set(cluster.nodes):
        assert time.monotonic() < deadline, f"takeovers only reached nodes {seen}"
        with dial(cluster) as old, dial(cluster) as new:
            sid = hello(old)
            echo(old, [b"x"])
            assert resume(new, sid, 1) == f"FLUX_READY {sid} 1"
            assert recv_frame(old) == b"FLUX_ERROR session-taken-over"
            assert old.recv(1) == b""
            echo(new, [b"y"])
            seen.add(node_of(sid))


def missing_header_errors(cluster, i):
    text = cluster.node_get(i, "/metrics")
    m = re.search(r'^flux_proxy_header_errors_total\{[^}]*reason="missing"[^}]*\} (\d+)', text, re.M)
    assert m, "no flux_proxy_header_errors_total{reason=\"missing\"} on /metrics"
    return int(m.group(1))


def test_proxy_protocol_real_address_and_direct_clients_refused(cluster):
    with dial(cluster) as sock:
        sid = hello(sock)
        me = "127.0.0.1:%d" % sock.getsockname()[1]
        listing = json.loads(cluster.node_get(node_of(sid), "/connections?limit=1000"))
        peers = [row["peer"] for row in listing["connections"]]
        assert me in peers, f"{me} not among the node's peers {peers}"

    before = missing_header_errors(cluster, 1)
    node = cluster.nodes[1]
    with socket.create_connection((node["addr"], node["port"]), timeout=IO_TIMEOUT) as direct:
        direct.settimeout(IO_TIMEOUT)
        send_frame(direct, b"FLUX_HELLO 1")
        try:
            reply = direct.recv(4096)
        except ConnectionResetError:
            reply = b""
        assert reply == b"", f"a direct client got a reply: {reply!r}"
    wait_for(lambda: missing_header_errors(cluster, 1) == before + 1, 10, "reason=missing to count the direct client")


def server_status(cluster, name):
    rows = cluster.haproxy_get("/stats;csv").splitlines()
    header = rows[0].lstrip("# ").split(",")
    px, sv, st = header.index("pxname"), header.index("svname"), header.index("status")
    for row in rows[1:]:
        cols = row.split(",")
        if len(cols) > st and cols[px] == "flux_nodes" and cols[sv] == name:
            return cols[st]
    pytest.fail(f"no server {name} in HAProxy's stats")


def exporter_says_down(cluster, name):
    text = cluster.haproxy_get("/metrics")
    pattern = r'^haproxy_server_status\{[^}]*server="%s"[^}]*state="DOWN"[^}]*\} 1$' % name
    return re.search(pattern, text, re.M) is not None


def test_killed_node_is_taken_out(cluster):
    victim = NODES
    sessions = [session_with_echoes(cluster, 3) for _ in range(15)]
    orphans = [sid for sid, _ in sessions if node_of(sid) == victim]
    assert orphans, "no session reached the victim node"

    os.kill(cluster.nodes[victim]["pid"], signal.SIGKILL)
    wait_for(lambda: exporter_says_down(cluster, f"node{victim}"), 20, "HAProxy's exporter to show the node DOWN")
    assert server_status(cluster, f"node{victim}").startswith("DOWN")

    failed = 0
    for _ in range(100):
        try:
            with dial(cluster) as sock:
                assert node_of(hello(sock)) != victim
        except (OSError, EOFError, AssertionError):
            failed += 1
    assert failed == 0, f"{failed} of 100 handshakes failed with node {victim} down"

    for sid in orphans:
        with dial(cluster) as sock:
            assert resume(sock, sid, 3) == "FLUX_INVALID session-unknown"


def test_rolling_restart_under_load(tmp_path):
    control = tmp_path / "control"
    c = start_cluster(["--control", str(control)])
    try:
        stats = {"ok": 0, "failed": 0, "errors": []}
        stop = threading.Event()

        def load():
            while not stop.is_set():
                try:
                    with dial(c) as sock:
                        hello(sock)
                        echo(sock, [b"load"])
                    stats["ok"] += 1
                except (OSError, EOFError, AssertionError) as e:
                    stats["failed"] += 1
                    stats["errors"].append(repr(e))

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        try:
            for i in c.nodes:
                done = len(read_acks(control))
                control_write(control, f"restart {i}\n")
                wait_for(lambda: len(read_acks(control)) > done, 60, f"node {i} to restart")
                wait_for(lambda: server_status(c, f"node{i}") == "UP", 20, f"node {i} UP again")
                assert read_acks(control)[-1].startswith(f"restarted node={i} ")
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=30)
        assert stats["failed"] == 0, f"{stats['failed']} failed of {stats['ok']}: {stats['errors'][:5]}"
        assert stats["ok"] >= 100, f"only {stats['ok']} sessions ran during the restarts"
        for ack in read_acks(control):
            pid = int(re.search(r"pid=(\d+)", ack).group(1))
            c.nodes[int(re.search(r"node=(\d+)", ack).group(1))]["pid"] = pid
    finally:
        stop_cluster(c)


def control_write(control, line):
    with open(control, "w") as f:
        f.write(line)


def read_acks(control):
    try:
        return Path(f"{control}.out").read_text().splitlines()
    except FileNotFoundError:
        return []


def test_fluxbench_churn_through_haproxy(cluster):
    bench = os.environ.get("FLUX_FLUXBENCH_BIN")
    if not bench:
        pytest.skip("FLUX_FLUXBENCH_BIN is not set (CTest sets it)")
    cmd = [bench, "--port", str(cluster.port), "--conns", "60", "--window", "4", "--churn", "30",
           "--warmup", "1s", "--duration", "4s", "--json"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"fluxbench exited {run.returncode}: {run.stderr[-2000:]}"
    churn = json.loads(run.stdout)["churn"]
    assert churn["drops"] > 0 and churn["resumes"] > 0, churn
    assert churn["resume_failures"] == 0, churn


@pytest.mark.parametrize("load", [["--window", "8"], ["--rate", "3000"]], ids=["closed-loop", "open-loop"])
def test_fluxbench_through_haproxy(cluster, load):
    bench = os.environ.get("FLUX_FLUXBENCH_BIN")
    if not bench:
        pytest.skip("FLUX_FLUXBENCH_BIN is not set (CTest sets it)")
    cmd = [bench, "--port", str(cluster.port), "--conns", "90", *load,
           "--warmup", "500ms", "--duration", "2s", "--json", "--no-progress"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"fluxbench exited {run.returncode}: {run.stderr[-2000:]}"
    result = json.loads(run.stdout)
    conns, frames = result["connections"], result["frames"]
    assert conns["ready"] == 90 and conns["connect_failed"] == 0 and conns["handshake_failed"] == 0, conns
    assert frames["received_measured"] > 0 and frames["lost"] == 0 and frames["mismatched"] == 0, frames
    assert result["errors"] == 0, result["failures"]
    # Every node carried its share of the 90 (leastconn): the balancer's
    # sessions to each node, while they were open, are counted by HAProxy.
    served = {i: int(re.search(r"^flux_connections_accepted_total\{[^}]*\} (\d+)",
                               cluster.node_get(i, "/metrics"), re.M).group(1)) for i in cluster.nodes}
    assert all(n >= 20 for n in served.values()), served


def test_compose_haproxy_config_is_the_generators_output():
    """haproxy/compose-cluster.cfg is never edited by hand: its first line
    names the generator's arguments, and running them gives the same file,
    which HAProxy accepts."""
    path = ROOT / "haproxy" / "compose-cluster.cfg"
    text = path.read_text()
    m = re.match(r"# Generated by: bash haproxy/flux-haproxy\.cfg\.sh (.*)\n", text)
    assert m, "compose-cluster.cfg does not name its generator's arguments"
    run = subprocess.run(["bash", str(ROOT / "haproxy" / "flux-haproxy.cfg.sh"), *m.group(1).split()],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout == text, "compose-cluster.cfg differs from the generator's output: regenerate it"
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (bash scripts/setup.sh installs it)")
    check = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_fluxbench_proxy_v2_straight_to_a_node(cluster):
    """Benchmarks that need more connections than HAProxy's descriptors allow
    load the nodes straight: fluxbench --proxy-v2 speaks for the balancer."""
    bench = os.environ.get("FLUX_FLUXBENCH_BIN")
    if not bench:
        pytest.skip("FLUX_FLUXBENCH_BIN is not set (CTest sets it)")
    node = cluster.nodes[1]
    base = [bench, "--host", node["addr"], "--port", str(node["port"]), "--conns", "20", "--window", "2",
            "--warmup", "200ms", "--duration", "1s", "--grace", "1s", "--connect-timeout", "2s", "--json",
            "--no-progress"]
    straight = subprocess.run([*base, "--proxy-v2"], capture_output=True, text=True, timeout=60)
    assert straight.returncode == 0, straight.stderr[-2000:]
    result = json.loads(straight.stdout)
    assert result["connections"]["ready"] == 20 and result["errors"] == 0, result["connections"]
    before = missing_header_errors(cluster, 1)
    bare = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0 and json.loads(bare.stdout)["connections"]["ready"] == 0
    wait_for(lambda: missing_header_errors(cluster, 1) >= before + 20, 10, "20 headerless connections counted")
