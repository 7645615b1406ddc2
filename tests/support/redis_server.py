"""A real redis-server for tests and benchmarks, on a free loopback port.

    from redis_server import RedisServer
    with RedisServer(workdir) as redis:      # started, answers PING
        url = redis.url                      # "redis://127.0.0.1:<port>"
        redis.command("HGETALL", "flux:s:" + sid)
        redis.kill()                         # SIGKILL, as a crash would
        redis.start()                        # again, same port, empty
        redis.freeze(); redis.thaw()         # SIGSTOP / SIGCONT: "slow", not down

Started as `redis-server --bind 127.0.0.1 --port P --save '' --appendonly
no`: nothing is written to disk, so a restart comes back empty (what a
crashed Redis without persistence looks like). The port is the kernel's pick
for port 0; if another process takes it before redis-server binds, the start
is retried on a new port (at most 5 times; a restart keeps its port).
Every wait has a deadline; the server is stopped on exit and, through
PR_SET_PDEATHSIG, killed by the kernel if the test process dies.

`command()` speaks RESP over a short-lived socket (stdlib only: no redis-py
on a Debian test host), so the tests can look at what the gateway stored.
Used by tests/cluster/test_store_*.py and bench/store.py;
`python3 tests/support/redis_server.py` runs a self-check.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT = 10.0  # seconds for redis-server to answer PING
IO_TIMEOUT = 5.0

_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisError(Exception):
    """An error reply (-ERR ...) from Redis."""


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ConnectionError(f"unexpected RESP line {line[:60]!r}")


def redis_command(port, *args, timeout=IO_TIMEOUT, host="127.0.0.1"):
    """One command on a fresh connection; raises RedisError on an error reply."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(_encode(args))
        reply = _Reader(s).reply()
    if isinstance(reply, RedisError):
        raise reply
    return reply


class RedisServer:
    def __init__(self, workdir=None, binary=None, extra_args=()):
        self.binary = binary or shutil.which("redis-server") or "/usr/sbin/redis-server"
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError("redis-server is not installed (bash scripts/setup.sh installs it)")
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="flux-redis-"))
        self.extra_args = list(extra_args)
        self.port = None
        self.proc = None
        self.starts = 0
        self._log = None

    # -- lifecycle -------------------------------------------------------

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=START_TIMEOUT):
        """Starts redis-server (on its previous port after a stop or kill)
        and returns once it answers PING."""
        assert not self.running(), "redis-server is already running"
        keep_port = self.port is not None
        for _ in range(5):
            port = self.port if keep_port else free_port()
            if self._spawn(port, timeout):
                self.port = port
                self.starts += 1
                return self
            if keep_port:
                break
        raise RuntimeError(f"redis-server did not answer PING within {timeout}s\n{self.log_tail()}")

    def _spawn(self, port, timeout):
        if self._log is None:
            self._log = open(self.workdir / "redis.log", "ab")
        argv = [self.binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), "--daemonize", "no", "--loglevel", "warning",
                "--enable-debug-command", "local", *self.extra_args]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # e.g. the port was taken meanwhile
            try:
                if redis_command(port, "PING", timeout=1) == "PONG":
                    return True
            except (OSError, ConnectionError, RedisError):
                pass
            time.sleep(0.02)
        self._reap(signal.SIGKILL)
        return False

    def _reap(self, sig, timeout=10):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen server must see its signal
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)

    def kill(self):
        """SIGKILL, as a crash would; the port is kept for start()."""
        self._reap(signal.SIGKILL)
        self.wait_port_closed()

    def stop(self):
        """SIGTERM (nothing to save), SIGKILL after 10 s."""
        self._reap(signal.SIGTERM)

    def wait_port_closed(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return
            time.sleep(0.02)
        raise RuntimeError(f"127.0.0.1:{self.port} still accepts after redis-server died")

    def freeze(self):
        """SIGSTOP: connections stay open and nothing is answered (a stalled Redis)."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)

    def close(self):
        self.stop()
        if self._log:
            self._log.close()
            self._log = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        if not self.running():
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def log_tail(self, n=20):
        try:
            lines = (self.workdir / "redis.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    # -- looking inside --------------------------------------------------

    def command(self, *args, timeout=IO_TIMEOUT):
        return redis_command(self.port, *args, timeout=timeout)

    def info(self, section=None):
        """INFO [section] as a dict of strings."""
        text = self.command("INFO", *([section] if section else [])).decode()
        out = {}
        for line in text.splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def keys(self, pattern):
        """Every key matching pattern (SCAN, not KEYS)."""
        cursor, found = b"0", []
        while True:
            cursor, batch = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found += [k.decode() for k in batch]
            if cursor == b"0":
                return sorted(set(found))

    def hgetall(self, key):
        flat = self.command("HGETALL", key) or []
        return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}

    def cpu_seconds(self):
        """User + system CPU of redis-server so far, from /proc/<pid>/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)

    def used_memory(self):
        return int(self.info("memory")["used_memory"])


def _self_check():
    with RedisServer() as r:
        port = r.port
        assert r.command("SET", "k", "v") == "OK" and r.command("GET", "k") == b"v"
        r.command("HSET", "flux:s:x", "seq", 3, "state", "detached")
        assert r.hgetall("flux:s:x") == {"seq": "3", "state": "detached"}
        assert r.keys("flux:s:*") == ["flux:s:x"]
        assert r.cpu_seconds() >= 0 and r.used_memory() > 0
        try:
            r.command("NOSUCH")
            raise AssertionError("no error reply")
        except RedisError:
            pass
        r.kill()
        assert not r.running()
        r.start()
        assert r.port == port and r.command("EXISTS", "k") == 0, "a restart must come back empty"
        r.freeze()
        try:
            redis_command(port, "PING", timeout=0.3)
            raise AssertionError("a frozen redis answered")
        except OSError:
            pass
        r.thaw()
        assert r.command("PING") == "PONG"
    assert not r.running()
    print(f"redis_server.py: ok (port {port}, {r.starts} starts)")


if __name__ == "__main__":
    _self_check()
