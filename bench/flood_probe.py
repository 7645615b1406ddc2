"""flood.py's probe: one well-behaved client beside the flooders, in its own
process (so that the flooders' loop never delays its clock). It sends
FLUX_HELLO, then one 64 B frame per interval, and times each echo; an echo
later than the timeout, or an error, is a failure and it reconnects.
Framing from fluxclient.codec (clients/python). Standard library only."""

import os
import re
import socket
import sys
import time

HOST = "127.0.0.1"
PROBE_PAYLOAD = 64

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
from fluxclient.codec import encode as frame, recv_frame  # noqa: E402


def hello(sock):
    sock.sendall(frame(b"FLUX_HELLO"))
    reply = recv_frame(sock)
    if not re.fullmatch(rb"FLUX_READY [0-9a-f]{32} 0", reply):
        raise ConnectionError("unexpected reply to FLUX_HELLO: %r" % reply[:80])


def connect_ready(port, timeout):
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    hello(sock)
    return sock


def one_echo(sock, seq):
    # 64 B whose first byte is 'p': never a FLUX_ control frame.
    payload = (b"probe %012d " % seq).ljust(PROBE_PAYLOAD, b".")
    t0 = time.monotonic()
    sock.sendall(frame(payload))
    echo = recv_frame(sock)
    elapsed = time.monotonic() - t0
    if echo != payload:
        raise ConnectionError("echo mismatch")
    return elapsed


def probe_main(port, start, stop, interval, timeout, conn):
    """Waits for `start`, then echoes one frame per interval until `stop`."""
    start.wait()
    t_start = time.monotonic()
    latencies, failures, seq, sock, worst, worst_at = [], 0, 0, None, -1.0, None
    next_send = time.monotonic()
    while not stop.is_set():
        try:
            if sock is None:
                sock = connect_ready(port, timeout)
            seq += 1
            latencies.append(one_echo(sock, seq))
            if latencies[-1] > worst:
                worst = latencies[-1]
                worst_at = time.monotonic() - t_start - worst  # when it was sent
        except OSError:
            failures += 1
            if sock is not None:
                sock.close()
            sock = None
        next_send += interval
        pause = next_send - time.monotonic()
        if pause > 0:
            stop.wait(pause)
        else:
            next_send = time.monotonic()  # late: send the next one at once
    if sock is not None:
        sock.close()
    conn.send((latencies, failures, worst_at))
    conn.close()


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # nearest rank, never under-reported
    return ordered[int(rank) - 1]
