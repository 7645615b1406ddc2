#!/usr/bin/env python3
"""A stand-in for flux-gateway, for developing and testing the dashboard.

It takes the gateway's command line (only --port, --metrics-port, --bind and
--reactors matter; other --flag VALUE pairs are accepted and ignored) and
prints the same first line, `listening port=<p> metrics_port=<m>`, so
tests/dashboard/browser_test.sh can run against it instead of the real
binary:

    tests/dashboard/browser_test.sh tests/dashboard/mock_stats_server.py /tmp/out

On --port it runs a small real Flux echo server (FLUX_HELLO -> FLUX_READY,
data echoed, FLUX_PING -> FLUX_PONG, FLUX_BYE), so the connection counts in
/stats are those of real clients. On --metrics-port it serves:

    /                 dashboard/index.html   (and /app.js, /style.css)
    /uPlot.*          dashboard/node_modules/uplot/dist/
    /stats            the docs/stats.md JSON, recomputed each second
    /connections      ?limit=N&sort=pending, the busiest connections
    /healthz          "ok"
    /_mock/outage     ?seconds=N: /stats answers 503 for N seconds, or
                      ?after=A&requests=R: the R requests of /stats after the
                      next A answer 503 (deterministic under virtual time)

--synthetic adds fake load (1000s of connections, frame rates, latencies)
on top of the real numbers, to look at a busy dashboard without a load
generator. --simulated-clock makes every /stats request one second later
than the previous one, so a headless Chromium run with
--virtual-time-budget=300000 fills the 5-minute charts in a few real
seconds (for screenshots). Stdlib and the framing of fluxclient.codec
(clients/python) only. SIGTERM/SIGINT: closes clients with FLUX_ERROR
server-shutdown and exits 0.
"""

import argparse
import json
import math
import os
import random
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from fluxclient.codec import recv_frame, send_frame  # noqa: E402 - the repository's client library, not installed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(ROOT, "dashboard")
UPLOT_DIST = os.path.join(DASHBOARD, "node_modules", "uplot", "dist")

STATIC = {
    "/": (os.path.join(DASHBOARD, "index.html"), "text/html; charset=utf-8"),
    "/app.js": (os.path.join(DASHBOARD, "app.js"), "text/javascript; charset=utf-8"),
    "/style.css": (os.path.join(DASHBOARD, "style.css"), "text/css; charset=utf-8"),
    "/uPlot.iife.min.js": (os.path.join(UPLOT_DIST, "uPlot.iife.min.js"), "text/javascript; charset=utf-8"),
    "/uPlot.min.css": (os.path.join(UPLOT_DIST, "uPlot.min.css"), "text/css; charset=utf-8"),
}

CLOSE_REASONS = ["bye", "eof", "reset", "handshake-timeout", "idle-timeout",
                 "protocol-error", "server-full", "shutdown"]
ERROR_CODES = ["handshake-expected", "handshake-timeout", "unsupported-version",
               "frame-too-large", "idle-timeout", "unknown-command", "already-ready",
               "server-full", "server-shutdown", "session-taken-over"]
HISTOGRAMS = ["echo_latency", "poll_wait", "loop_busy", "loop_lag"]
RATE_KEYS = ["frames_in", "frames_out", "bytes_in", "bytes_out", "accepted", "closed",
             "buffer_allocations", "context_switches_voluntary",
             "context_switches_involuntary", "loop_iterations", "loop_utilization"]
BLOCK = 69632


def percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Reactor:
    """Counters of one fake reactor; guarded by Gateway.lock."""

    def __init__(self, name):
        self.name = name
        self.state = {"connecting": 0, "handshake": 0, "ready": 0, "closing": 0}
        self.accepted = 0
        self.closed = {r: 0 for r in CLOSE_REASONS}
        self.frames_in = self.frames_out = self.bytes_in = self.bytes_out = 0
        self.errors = {c: 0 for c in ERROR_CODES}
        self.echo_all = []       # every echo latency (bounded below)
        self.echo_window = []    # echo latencies of the current second
        self.echo_last_1s = []   # sorted latencies of the last full second


class Conn:
    def __init__(self, cid, reactor, peer):
        self.id = cid
        self.reactor = reactor
        self.peer = peer
        self.state = "handshake"
        self.start = time.monotonic()
        self.frames_in = self.frames_out = self.bytes_in = self.bytes_out = 0


class Gateway:
    def __init__(self, reactors, synthetic, simulated_clock=False):
        self.lock = threading.Lock()
        self.reactors = [Reactor(str(i)) for i in range(reactors)]
        self.conns = {}
        self.socks = {}
        self.next_id = 1
        self.synthetic = synthetic
        self.start_wall = time.time()
        self.start_mono = time.monotonic()
        self.outage_until = 0.0
        self.outage_after = 0     # /stats requests still answered before...
        self.outage_requests = 0  # ...this many answer 503
        self.samples = []  # [(mono, totals dict)] the last two, for rates
        self.stats_json = b"{}"
        self.simulated_clock = simulated_clock
        self.sim_seconds = 0

    # ---- echo server -----------------------------------------------------

    def serve_tcp(self, listener):
        while True:
            try:
                sock, addr = listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve_conn, args=(sock, addr), daemon=True).start()

    def set_state(self, conn, new):
        r = self.reactors[conn.reactor]
        r.state[conn.state] -= 1
        r.state[new] += 1
        conn.state = new

    def serve_conn(self, sock, addr):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            cid = self.next_id
            self.next_id += 1
            conn = Conn(cid, cid % len(self.reactors), f"{addr[0]}:{addr[1]}")
            r = self.reactors[conn.reactor]
            r.accepted += 1
            r.state["handshake"] += 1
            self.conns[cid] = conn
            self.socks[cid] = sock
        reason = "eof"
        try:
            reason = self.conversation(sock, conn, r)
        except OSError:
            reason = "reset"
        finally:
            with self.lock:
                self.set_state(conn, "closing")
                r.state["closing"] -= 1
                r.closed[reason] += 1
                del self.conns[cid]
                del self.socks[cid]
            sock.close()

    def conversation(self, sock, conn, r):
        while True:
            try:
                payload = recv_frame(sock)
            except EOFError:
                return "eof"
            t0 = time.monotonic()
            with self.lock:
                conn.frames_in += 1
                conn.bytes_in += 4 + len(payload)
                r.frames_in += 1
                r.bytes_in += 4 + len(payload)
            reply, close = self.answer(conn, r, payload)
            if reply is not None:
                send_frame(sock, reply)
                with self.lock:
                    conn.frames_out += 1
                    conn.bytes_out += 4 + len(reply)
                    r.frames_out += 1
                    r.bytes_out += 4 + len(reply)
                    if not reply.startswith(b"FLUX_"):
                        r.echo_window.append(time.monotonic() - t0)
            if close:
                return close

    def answer(self, conn, r, payload):
        """Returns (reply or None, close reason or None)."""
        words = payload.split(b" ")
        if conn.state == "handshake":
            if words[0] == b"FLUX_HELLO" and (len(words) == 1 or words[1:] == [b"1"]):
                with self.lock:
                    self.set_state(conn, "ready")
                return b"FLUX_READY " + os.urandom(16).hex().encode() + b" 0", None
            with self.lock:
                r.errors["handshake-expected"] += 1
            return b"FLUX_ERROR handshake-expected", "protocol-error"
        if not payload.startswith(b"FLUX_"):
            return payload, None
        if words[0] == b"FLUX_PING":
            return b"FLUX_PONG" + payload[len(b"FLUX_PING"):], None
        if words[0] == b"FLUX_BYE":
            return b"FLUX_BYE", "bye"
        return b"FLUX_ERROR unknown-command", None

    def shutdown_clients(self):
        with self.lock:
            socks = list(self.socks.values())
        for s in socks:
            try:
                send_frame(s, b"FLUX_ERROR server-shutdown")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---- /stats ------------------------------------------------------------

    def in_outage(self):
        with self.lock:
            if time.monotonic() < self.outage_until:
                return True
            if self.outage_after > 0:
                self.outage_after -= 1
                return False
            if self.outage_requests > 0:
                self.outage_requests -= 1
                return True
            return False

    def sampler(self):
        """Once a second: roll the latency windows and rebuild /stats."""
        while True:
            with self.lock:
                for r in self.reactors:
                    r.echo_last_1s = sorted(r.echo_window)
                    r.echo_all.extend(r.echo_window)
                    del r.echo_all[:-20000]
                    r.echo_window = []
                body = json.dumps(self.build_stats()).encode()
                self.stats_json = body
            time.sleep(1.0 - (time.monotonic() - self.start_mono) % 1.0)

    def counters(self, r):
        return {
            "frames_in": r.frames_in, "frames_out": r.frames_out,
            "bytes_in": r.bytes_in, "bytes_out": r.bytes_out,
            "accepted": r.accepted, "closed": sum(r.closed.values()),
        }

    def next_simulated_stats(self):
        """--simulated-clock: each call is one second after the previous."""
        with self.lock:
            self.sim_seconds += 1
            for r in self.reactors:
                r.echo_last_1s = []
            return json.dumps(self.build_stats(self.sim_seconds)).encode()

    def build_stats(self, simulated_uptime=None):
        now_mono = time.monotonic()
        uptime = now_mono - self.start_mono if simulated_uptime is None else simulated_uptime
        current = [self.counters(r) for r in self.reactors]
        prev_t, prev = self.samples[-1] if self.samples else (now_mono - 1, current)
        dt = max(1e-3, now_mono - prev_t)
        self.samples = [(now_mono, current)]
        blocks = []
        for i, r in enumerate(self.reactors):
            rates = {k: (current[i][k] - prev[i][k]) / dt for k in current[i]}
            blocks.append(self.reactor_block(r, rates, uptime, i))
        out = {
            "version": "0.1.0-mock",
            "uptime_seconds": round(uptime, 3),
            "now_unix_seconds": round(self.start_wall + uptime, 3),
            "total": sum_blocks(blocks),
            "reactors": [dict({"reactor": r.name}, **b) for r, b in zip(self.reactors, blocks)],
            "process": process_block(self.start_wall),
        }
        return out

    def reactor_block(self, r, rates, uptime, idx):
        syn = self.synthetic_load(uptime, idx) if self.synthetic else None
        ready = r.state["ready"] + (syn["ready"] if syn else 0)
        handshake = r.state["handshake"] + (syn["handshake"] if syn else 0)
        closing = r.state["closing"] + (syn["closing"] if syn else 0)
        for k in ("frames_in", "frames_out"):
            rates[k] += syn["fps"] if syn else 0
        for k in ("bytes_in", "bytes_out"):
            rates[k] += syn["fps"] * 68 if syn else 0
        rates["buffer_allocations"] = syn["allocs"] if syn else 0.0
        rates["context_switches_voluntary"] = 40 + rates["frames_in"] / 50 + random.random() * 5
        rates["context_switches_involuntary"] = random.random() * (3 if syn else 0.5)
        rates["loop_iterations"] = 100 + rates["frames_in"] / 3
        rates["loop_utilization"] = min(0.98, 0.01 + rates["frames_in"] / 400000)
        echo = r.echo_last_1s
        lat = {h: synthetic_hist(h, syn, rates) for h in HISTOGRAMS}
        if echo and not syn:
            lat["echo_latency"]["last_1s"] = {"count": len(echo), "p50": percentile(echo, 0.5),
                                      "p90": percentile(echo, 0.9), "p99": percentile(echo, 0.99),
                                      "p999": percentile(echo, 0.999)}
        in_use = (ready + handshake) * 2 * BLOCK // 16
        return {
            "connections": {
                "by_state": {"connecting": 0, "handshake": handshake, "ready": ready,
                             "closing": closing},
                "open": handshake + ready + closing,
                "accepted_total": r.accepted + (syn["ready"] * 3 if syn else 0),
                "accept_errors_total": 0,
                "closed_total": dict(r.closed),
            },
            "traffic": {
                "frames_in_total": r.frames_in, "frames_out_total": r.frames_out,
                "bytes_in_total": r.bytes_in, "bytes_out_total": r.bytes_out,
                "bytes_queued": syn["queued"] if syn else 0,
                "backpressure_pauses_total": 0,
                "protocol_errors_total": dict(r.errors),
            },
            "rates": {"1s": rates, "10s": dict(rates)},
            "loop": {
                "iterations_total": int(uptime * rates["loop_iterations"]),
                "busy_seconds_total": uptime * rates["loop_utilization"],
                "poll_seconds_total": uptime * (1 - rates["loop_utilization"]),
                "voluntary_switches_total": int(uptime * 40),
                "involuntary_switches_total": int(uptime),
                "last_turn_age_seconds": random.random() * 0.01,
            },
            "latency_seconds": lat,
            "pool": {
                "block_size_bytes": BLOCK,
                "block_acquires_total": r.frames_in,
                "block_allocations_total": 64,
                "frame_node_allocations_total": 1,
                "block_releases_total": 0,
                "frame_node_releases_total": 0,
                "block_bytes_in_use": in_use,
                "block_bytes_free": max(0, 64 * BLOCK - in_use) + BLOCK * 8,
            },
        }

    def synthetic_load(self, t, idx):
        """Smooth fake traffic so a screenshot looks like a busy gateway."""
        wave = 0.5 + 0.5 * math.sin(t / 40 + idx)
        ready = int(1500 + 900 * wave + 60 * idx)
        return {
            "ready": ready,
            "handshake": int(20 + 30 * random.random()),
            "closing": int(5 * random.random()),
            "fps": ready * (18 + 4 * math.sin(t / 7)) + random.random() * 500,
            "allocs": max(0.0, 30 * math.sin(t / 13) + random.gauss(0, 5)) if t % 60 < 25 else 0.0,
            "queued": int(random.random() * 50000),
            "scale": 1 + 0.5 * wave + (3 if t % 45 < 2 else 0),
        }


def synthetic_hist(name, syn, rates):
    base = {"echo_latency": 25e-6, "poll_wait": 2e-3, "loop_busy": 40e-6, "loop_lag": 60e-6}[name]
    scale = syn["scale"] if syn else 1.0
    if name == "poll_wait":
        scale = 1 / max(0.2, scale)
    p50 = base * scale * (0.9 + 0.2 * random.random())
    count = int(rates["frames_in"]) if name == "echo_latency" else int(rates["loop_iterations"])
    window = {"count": count, "p50": p50, "p90": p50 * 2, "p99": p50 * 4.5, "p999": p50 * 12}
    return dict(window, count=count * 100, sum=p50 * count * 100, max=p50 * 40, last_1s=window)


def sum_blocks(blocks):
    """The `total` block: counters and gauges add up, percentiles take the max."""
    def merge(a, b, key=""):
        if isinstance(a, dict):
            return {k: merge(a[k], b[k], k) for k in a}
        if key in ("p50", "p90", "p99", "p999", "max", "block_size_bytes", "last_turn_age_seconds"):
            return max(a, b)
        if key == "loop_utilization":
            return max(a, b)
        return a + b
    total = blocks[0]
    for b in blocks[1:]:
        total = merge(total, b)
    return total


def process_block(start_wall):
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    now = time.monotonic()
    last = process_block.last
    process_block.last = (now, cpu)
    pct = 100 * (cpu - last[1]) / max(1e-3, now - last[0]) if last else 0.0
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    import resource
    return {
        "cpu_seconds_total": round(cpu, 3),
        "cpu_percent_1s": round(pct, 2),
        "resident_memory_bytes": rss,
        "open_fds": len(os.listdir("/proc/self/fd")),
        "max_fds": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "threads": threading.active_count(),
        "start_time_unix_seconds": round(start_wall, 3),
    }


process_block.last = None


def make_handler(gw):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # keep the test output quiet
            pass

        def reply(self, code, ctype, body):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path in STATIC:
                path, ctype = STATIC[url.path]
                with open(path, "rb") as f:
                    return self.reply(200, ctype, f.read())
            if url.path == "/stats":
                if gw.in_outage():
                    return self.reply(503, "text/plain", b"mock outage\n")
                if gw.simulated_clock:
                    body = gw.next_simulated_stats()
                else:
                    with gw.lock:
                        body = gw.stats_json
                if "pretty" in query:
                    body = json.dumps(json.loads(body), indent=2).encode()
                return self.reply(200, "application/json", body)
            if url.path == "/connections":
                return self.reply(200, "application/json", self.connections(query))
            if url.path == "/healthz":
                return self.reply(200, "text/plain", b"ok\n")
            if url.path == "/_mock/outage":
                with gw.lock:
                    if "requests" in query:
                        gw.outage_after = int(query.get("after", ["0"])[0])
                        gw.outage_requests = int(query["requests"][0])
                    else:
                        gw.outage_until = time.monotonic() + float(query.get("seconds", ["10"])[0])
                return self.reply(200, "text/plain", b"outage started\n")
            return self.reply(404, "text/plain", b"not found\n")

        def connections(self, query):
            limit = int(query.get("limit", ["10"])[0])
            now = time.monotonic()
            with gw.lock:
                rows = [{
                    "id": c.id, "reactor": str(c.reactor), "peer": c.peer, "state": c.state,
                    "age_seconds": round(now - c.start, 3),
                    "frames_in": c.frames_in, "frames_out": c.frames_out,
                    "bytes_in": c.bytes_in, "bytes_out": c.bytes_out,
                    "bytes_pending": random.choice([0, 0, 0, 68, 4096, 70000]) if gw.synthetic else 0,
                } for c in gw.conns.values()]
            rows.sort(key=lambda c: (-c["bytes_pending"], -c["frames_in"]))
            return json.dumps({"connections": rows[:limit], "total": len(rows)}).encode()

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=9090)
    ap.add_argument("--metrics-port", type=int, default=9100)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--reactors", type=int, default=2)
    ap.add_argument("--synthetic", action="store_true", help="add fake load on top of real clients")
    ap.add_argument("--simulated-clock", action="store_true",
                    help="each /stats request advances the clock by one second")
    args, _ignored = ap.parse_known_args()

    gw = Gateway(max(1, args.reactors), args.synthetic, args.simulated_clock)
    listener = socket.create_server((args.bind, args.port), backlog=1024)
    http = ThreadingHTTPServer((args.bind, args.metrics_port), make_handler(gw))
    http.daemon_threads = True

    def stop(signum, frame):
        gw.shutdown_clients()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=gw.serve_tcp, args=(listener,), daemon=True).start()
    threading.Thread(target=gw.sampler, daemon=True).start()
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(f"listening port={listener.getsockname()[1]} metrics_port={http.server_address[1]}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
