"""Helpers for the session-store tests (test_store_*.py) and bench/store.py:
gateway processes started straight (no balancer), a real Redis
(tests/support/redis_server.py), blocking Flux clients framed by
fluxclient.codec, and the gateway's metrics read from /metrics.

Every wait polls a condition under a deadline; every process is stopped on
exit and killed by the kernel if the test process dies (PR_SET_PDEATHSIG).
"""

import ctypes
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.path.insert(0, str(ROOT / "tests" / "support"))
from fluxclient.codec import recv_frame, send_frame  # noqa: E402
from redis_server import RedisError, RedisServer, free_port, redis_command  # noqa: E402,F401

IO_TIMEOUT = 10
START_TIMEOUT = 60  # sanitizer builds start slowly on a busy machine
LISTENING = re.compile(r"listening port=(\d+) metrics_port=(\d+)")

_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def gateway_binary():
    return os.environ.get("FLUX_GATEWAY_BIN")


def wait_for(predicate, timeout, what):
    """predicate()'s first truthy value, polled every 50 ms; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Gateway:
    """flux-gateway --port 0 --metrics-port 0 [flags] on 127.0.0.1."""

    def __init__(self, binary, flags=(), workdir=None, name="gateway"):
        self.binary = binary
        self.flags = list(flags)
        self.name = name
        self.err_path = Path(workdir or "/tmp") / f"{name}-{os.getpid()}-{id(self)}.err"
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([binary, "--port", "0", "--metrics-port", "0", *self.flags],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._err,
                                     preexec_fn=_die_with_parent)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while b"\n" not in line and time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
        sel.close()
        m = LISTENING.search(line.decode(errors="replace"))
        if not m:
            self.kill()
            raise AssertionError(f"{name} printed no start line: {line!r}\n{self.log_tail()}")
        self.port, self.mport = int(m.group(1)), int(m.group(2))

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait(IO_TIMEOUT)

    def stop(self, timeout=30):
        """SIGTERM; returns the exit status (SIGKILL after timeout: a failure)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(IO_TIMEOUT)
                raise AssertionError(f"{self.name} did not stop within {timeout}s of SIGTERM")
        self.proc.stdout.close()
        self._err.close()
        return self.proc.returncode

    def log_tail(self, n=30):
        try:
            return "\n".join(self.err_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # -- HTTP -------------------------------------------------------------

    def get(self, path):
        """(status, body) of GET path on the metrics port; 5xx are answers too."""
        url = f"http://127.0.0.1:{self.mport}{path}"
        try:
            with urllib.request.urlopen(url, timeout=IO_TIMEOUT) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def healthz(self):
        return self.get("/healthz")

    def metrics(self):
        status, text = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}"
        return text

    def wait_store_connected(self, timeout=30):
        """Until every reactor is connected to the session store: the start
        line comes before the store connects, and a session created before
        that is node-local (counted as a fallback)."""
        def connected():
            text = self.metrics()
            reactors = len(set(re.findall(r'^flux_loop_iterations_total\{[^}]*reactor="(\d+)"', text, re.M)))
            return reactors > 0 and metric_sum(text, "flux_session_store_connected") == reactors
        wait_for(connected, timeout, f"{self.name}: every reactor connected to the session store")
        return self

    def metric(self, name, text=None, **labels):
        """Sum of every sample of `name` whose labels include `labels`
        (over reactors); None when there is no such sample."""
        return metric_sum(text if text is not None else self.metrics(), name, **labels)

    # -- clients ----------------------------------------------------------

    def dial(self):
        return dial(self.port)


def metric_sum(text, name, **labels):
    total, found = 0.0, False
    pattern = re.compile(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), re.M)
    for m in pattern.finditer(text):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == str(v) for k, v in labels.items()):
            total += float(m.group(2))
            found = True
    return total if found else None


def dial(port, host="127.0.0.1"):
    sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    sock.settimeout(IO_TIMEOUT)
    return sock


def hello(sock):
    send_frame(sock, b"FLUX_HELLO 1")
    reply = recv_frame(sock).decode()
    words = reply.split()
    assert len(words) == 3 and words[0] == "FLUX_READY" and words[2] == "0", reply
    return words[1]


def echo(sock, payloads):
    for p in payloads:
        send_frame(sock, p)
    for p in payloads:
        got = recv_frame(sock)
        assert got == p, f"echo {got[:60]!r}, want {p[:60]!r}"


def resume(sock, sid, last_seq):
    send_frame(sock, f"FLUX_RESUME {sid} {last_seq}".encode())
    return recv_frame(sock).decode()


def payloads_for(sid, first, last, size=0):
    """Data payloads first..last (1-based seq numbers) of a session, padded to size."""
    return [f"{sid[:8]}-{j}".encode().ljust(size, b".") for j in range(first, last + 1)]


def expect_closed(sock):
    """The server closes after its last frame: EOF (or a reset) within IO_TIMEOUT."""
    try:
        rest = sock.recv(4096)
    except ConnectionResetError:
        rest = b""
    assert rest == b"", f"expected the server to close, got {rest[:80]!r}"


def session_id_for_node(node, tail="0" * 28):
    return f"{node:04x}{tail}"
