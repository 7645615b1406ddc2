"""What flood.py watches while it floods: the gateway's RSS (/proc/PID/status),
the kernel's TCP buffer memory (/proc/net/sockstat), the load average, and at
the end flux_connections_closed_total by reason from /metrics. Sampler takes
the periodic samples from whichever loop is running. Standard library only."""

import re
import time
import urllib.request

HOST = "127.0.0.1"
SAMPLE_PERIOD = 0.25           # 4 RSS samples a second


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def tcp_mem_pages():
    """The kernel's TCP buffer memory, all sockets (/proc/net/sockstat), in pages."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    fields = line.split()
                    return int(fields[fields.index("mem") + 1])
    except (OSError, ValueError):
        pass
    return None


def closed_by_reason(metrics_port):
    if not metrics_port:
        return None
    try:
        with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, metrics_port), timeout=3) as r:
            text = r.read().decode()
    except (OSError, ValueError):
        return None
    line = r'^flux_connections_closed_total\{[^}]*reason="([^"]+)"[^}]*\} (\S+)'
    return {m.group(1): int(float(m.group(2))) for m in re.finditer(line, text, re.M)}


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Sampler:
    """RSS every SAMPLE_PERIOD, driven by whichever loop is running."""

    def __init__(self, pid, t0):
        self.pid, self.t0, self.samples, self.next = pid, t0, [], t0
        self.tcp_mem_peak = 0

    def due(self):
        return max(0.0, self.next - time.monotonic())

    def poll(self, phase):
        now = time.monotonic()
        if now < self.next:
            return
        self.next = max(self.next + SAMPLE_PERIOD, now)
        kib = rss_kib(self.pid)
        self.tcp_mem_peak = max(self.tcp_mem_peak, tcp_mem_pages() or 0)
        if kib is not None:
            self.samples.append((now - self.t0, kib, phase))

    def sleep_until(self, deadline, phase):
        while time.monotonic() < deadline:
            time.sleep(min(self.due(), max(0.0, deadline - time.monotonic())))
            self.poll(phase)
