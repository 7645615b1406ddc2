"""scripts/cluster.sh as a child process, for tests/cluster and bench/cluster.py.

cluster.sh runs in the foreground and prints one line once every node and
HAProxy are up:

    cluster port=<p> haproxy_metrics_port=<m> nodes=<pid>:<addr>:<port>:<metrics port>,...

Cluster.start() runs it and parses that line; stop() sends SIGTERM (what
cluster.sh answers by stopping everything and exiting 0). Standard library
only, no pytest: the tests turn ClusterError into a failure or a skip, the
benchmark into an error message. Every wait has a deadline.
"""

import os
import re
import selectors
import signal
import subprocess
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# With --session-store redis the line ends in " redis_port=<r>".
LINE = re.compile(r"^cluster port=(\d+) haproxy_metrics_port=(\d+) nodes=(\S+)(?: redis_port=\d+)?$")


class ClusterError(RuntimeError):
    """cluster.sh did not start (no line, or not that line)."""


class Cluster:
    def __init__(self, proc, line):
        m = LINE.match(line)
        if not m:
            raise ClusterError(f"bad cluster line: {line!r}")
        self.proc = proc
        self.port = int(m.group(1))
        self.haproxy_metrics_port = int(m.group(2))
        self.nodes = {}  # 1-based node number -> pid, addr, port, mport
        for i, spec in enumerate(m.group(3).split(","), start=1):
            pid, addr, port, mport = spec.split(":")
            self.nodes[i] = {"pid": int(pid), "addr": addr, "port": int(port), "mport": int(mport)}

    @classmethod
    def start(cls, gateway, nodes, args=(), timeout=90):
        """`cluster.sh --nodes N --port 0 ARGS...` with this gateway binary
        (gateway flags go after "--" in ARGS). Raises ClusterError when it
        prints no line within timeout seconds, or exits first."""
        env = dict(os.environ, FLUX_SKIP_SETUP="1", FLUX_GATEWAY_BIN=gateway)
        cmd = ["bash", str(ROOT / "scripts" / "cluster.sh"), "--nodes", str(nodes), "--port", "0", *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout=timeout)
        sel.close()
        line = proc.stdout.readline().strip() if ready else ""
        try:
            if not line:
                raise ClusterError(f"cluster.sh printed nothing within {timeout}s" if not ready
                                   else "cluster.sh exited before its line")
            return cls(proc, line)
        except ClusterError:
            _kill(proc)
            raise

    def node_get(self, i, path, timeout=10):
        node = self.nodes[i]
        with urllib.request.urlopen(f"http://{node['addr']}:{node['mport']}{path}", timeout=timeout) as r:
            return r.read().decode()

    def haproxy_get(self, path, timeout=10):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.haproxy_metrics_port}{path}", timeout=timeout) as r:
            return r.read().decode()

    def stop(self, timeout=60):
        """SIGTERM; its exit status, or None if it had to be killed after timeout s."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(self.proc)
            return None


def _kill(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
