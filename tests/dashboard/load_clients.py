#!/usr/bin/env python3
"""N Flux clients that handshake and keep echoing, for the dashboard test.

    load_clients.py --port P [--host 127.0.0.1] [--clients 20] [--rate 20]
                    [--duration 300]

Each client connects, sends FLUX_HELLO, expects FLUX_READY, then sends
--rate data frames per second (u32 big-endian length + payload, see
shared PROTOCOL.md) and checks every echo. Prints `ready <N>` once all N
are in READY, then `done frames=<n>` at the end.

Bounded: every socket operation has a timeout and the whole run stops after
--duration seconds (or on SIGTERM/SIGINT, or when the server closes a
connection). Exit status: 0 on a clean run or a server-initiated close after
`ready` (e.g. FLUX_ERROR server-shutdown), 1 when a client failed to
connect, handshake or got a wrong echo. Stdlib only.
"""

import argparse
import signal
import socket
import struct
import sys
import threading
import time

IO_TIMEOUT_S = 5.0


class Failure(Exception):
    pass


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("server closed the connection")
        buf += chunk
    return buf


def recv_frame(sock):
    (length,) = struct.unpack(">I", recv_exact(sock, 4))
    return recv_exact(sock, length) if length else b""


def send_frame(sock, payload):
    sock.sendall(struct.pack(">I", len(payload)) + payload)


class Run:
    def __init__(self, clients):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ready = 0
        self.all_ready = threading.Event()
        self.clients = clients
        self.frames = 0
        self.errors = []

    def mark_ready(self):
        with self.lock:
            self.ready += 1
            if self.ready == self.clients:
                self.all_ready.set()

    def fail(self, message):
        with self.lock:
            self.errors.append(message)
        self.stop.set()


def client(run, idx, host, port, rate):
    try:
        sock = socket.create_connection((host, port), timeout=IO_TIMEOUT_S)
    except OSError as e:
        return run.fail(f"client {idx}: connect failed: {e}")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        send_frame(sock, b"FLUX_HELLO")
        answer = recv_frame(sock)
        if not answer.startswith(b"FLUX_READY "):
            return run.fail(f"client {idx}: handshake answered {answer[:80]!r}")
        run.mark_ready()
        seq = 0
        period = 1.0 / rate if rate > 0 else 1.0
        next_send = time.monotonic()
        while not run.stop.is_set():
            seq += 1
            payload = b"dashboard-test client=%d seq=%d " % (idx, seq) + b"x" * 32
            if rate > 0:
                send_frame(sock, payload)
                echo = recv_frame(sock)
                if echo != payload:
                    if echo.startswith(b"FLUX_ERROR"):
                        raise EOFError(echo.decode(errors="replace"))
                    return run.fail(f"client {idx}: wrong echo {echo[:80]!r}")
                with run.lock:
                    run.frames += 1
            else:
                send_frame(sock, b"FLUX_PING keepalive")
                recv_frame(sock)
            next_send += period
            run.stop.wait(max(0.0, next_send - time.monotonic()))
    except (EOFError, ConnectionError) as e:
        # The server going away (shutdown at the end of the test) is normal
        # once everyone was ready; before that it is a failure.
        if not run.all_ready.is_set():
            run.fail(f"client {idx}: {e}")
        run.stop.set()
    except OSError as e:
        run.fail(f"client {idx}: {e}")
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--rate", type=float, default=20.0, help="data frames per second per client (0: pings only)")
    ap.add_argument("--duration", type=float, default=300.0, help="stop after this many seconds")
    args = ap.parse_args()

    run = Run(args.clients)
    signal.signal(signal.SIGTERM, lambda *_: run.stop.set())
    signal.signal(signal.SIGINT, lambda *_: run.stop.set())
    threads = [threading.Thread(target=client, args=(run, i, args.host, args.port, args.rate), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + args.duration
    announced = False
    while not run.stop.is_set() and time.monotonic() < deadline:
        if not announced and run.all_ready.is_set():
            print(f"ready {args.clients}", flush=True)
            announced = True
        run.stop.wait(0.05)
    run.stop.set()
    for t in threads:
        t.join(IO_TIMEOUT_S + 1)
    for e in run.errors:
        print(f"load_clients: error: {e}", file=sys.stderr, flush=True)
    print(f"done frames={run.frames}", flush=True)
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
