"""A server under test as a child process: started with `--port 0`, its ports
read from the `listening port=<p> [metrics_port=<m>]` line it prints once
bound, stopped with SIGTERM.

Both flux-gateway and the baseline echo server (bench/baseline) print that
line; bench/ab.py and bench/flood.py start their servers here. Standard
library only."""

import re
import signal
import subprocess
import threading
import time


class Server:
    """A started server: its process and the ports from its listening line
    (metrics_port is None when the line has none, e.g. the baseline)."""

    def __init__(self, proc, port, metrics_port):
        self.proc, self.port, self.metrics_port = proc, port, metrics_port

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL if it has not exited within timeout seconds."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(argv, extra_flags=("--port", "0"), log_path=None, timeout=20, new_session=False):
    """Starts argv + extra_flags and waits up to timeout seconds for its
    listening line. What it prints on stderr, and on stdout after that line,
    goes to log_path (appended) or nowhere: a pipe left unread would block it.
    new_session keeps the child out of our process group (a Ctrl-C reaches
    only us; we stop it). Raises RuntimeError if no line came."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([*argv, *extra_flags], stdout=subprocess.PIPE, stderr=log,
                            start_new_session=new_session)
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(b"listening port=") or not line:
            break
    m = re.match(rb"listening port=(\d+)(?: metrics_port=(\d+))?", line)
    if not m:
        proc.kill()
        proc.wait()
        raise RuntimeError("%s printed no listening line (got %r)" % (argv[0], line))

    def drain():
        for rest in proc.stdout:
            if log_path:
                log.write(rest)
    threading.Thread(target=drain, daemon=True).start()
    return Server(proc, int(m.group(1)), int(m.group(2)) if m.group(2) else None)
