#!/usr/bin/env python3
"""N Flux clients that handshake and keep echoing, for the dashboard test.

    load_clients.py --port P [--host 127.0.0.1] [--clients 20] [--rate 20]
                    [--duration 300]

Each client connects with fluxclient (clients/python: FLUX_HELLO, FLUX_READY,
framing), then sends --rate data frames per second and checks every echo
(fluxclient checks each echo against the frame sent). Prints `ready <N>` once
all N are in READY, then `done frames=<n>` at the end.

Bounded: every operation has a timeout and the whole run stops after
--duration seconds (or on SIGTERM/SIGINT, or when the server closes a
connection). Exit status: 0 on a clean run or a server-initiated close after
`ready` (e.g. FLUX_ERROR server-shutdown), 1 when a client failed to
connect, handshake or got a wrong echo. Stdlib only.
"""

import argparse
import asyncio
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import fluxclient  # noqa: E402 - the repository's client library, not installed

IO_TIMEOUT_S = 5.0


class Run:
    def __init__(self, clients):
        self.stop = asyncio.Event()
        self.ready = 0
        self.all_ready = asyncio.Event()
        self.clients = clients
        self.frames = 0
        self.errors = []

    def mark_ready(self):
        self.ready += 1
        if self.ready == self.clients:
            self.all_ready.set()

    def fail(self, message):
        self.errors.append(message)
        self.stop.set()


async def client(run, idx, host, port, rate):
    # No resume and no heartbeats: one connection per client, as the
    # dashboard counts them; a close by the server ends the client.
    try:
        c = await fluxclient.connect(host, port, resume=False, heartbeat_interval=None,
                                     connect_timeout=IO_TIMEOUT_S, close_timeout=IO_TIMEOUT_S)
    except (OSError, asyncio.TimeoutError, fluxclient.FluxError) as e:
        return run.fail(f"client {idx}: connect or handshake failed: {e!r}")
    loop = asyncio.get_running_loop()
    try:
        run.mark_ready()
        seq = 0
        period = 1.0 / rate if rate > 0 else 1.0
        next_send = loop.time()
        while not run.stop.is_set():
            seq += 1
            if rate > 0:
                await c.send(b"dashboard-test client=%d seq=%d " % (idx, seq) + b"x" * 32)
                await asyncio.wait_for(c.recv(), IO_TIMEOUT_S)  # fluxclient compares it with the frame
                run.frames += 1
            else:
                await c.ping(timeout=IO_TIMEOUT_S)
            next_send += period
            try:
                await asyncio.wait_for(run.stop.wait(), max(0.0, next_send - loop.time()))
            except asyncio.TimeoutError:
                pass
    except (fluxclient.ServerError, fluxclient.ConnectionLost) as e:
        # The server going away (shutdown at the end of the test) is normal
        # once everyone was ready; before that it is a failure.
        if not run.all_ready.is_set():
            run.fail(f"client {idx}: {e}")
        run.stop.set()
    except (fluxclient.FluxError, asyncio.TimeoutError, OSError) as e:
        run.fail(f"client {idx}: {e!r}")
    finally:
        await c.close(bye=False)  # as before: the socket just closes, no FLUX_BYE


async def run_all(args):
    run = Run(args.clients)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, run.stop.set)
    loop.add_signal_handler(signal.SIGINT, run.stop.set)
    tasks = [asyncio.create_task(client(run, i, args.host, args.port, args.rate)) for i in range(args.clients)]
    deadline = loop.time() + args.duration
    announced = False
    while not run.stop.is_set() and loop.time() < deadline:
        if not announced and run.all_ready.is_set():
            print(f"ready {args.clients}", flush=True)
            announced = True
        try:
            await asyncio.wait_for(run.stop.wait(), 0.05)
        except asyncio.TimeoutError:
            pass
    run.stop.set()
    await asyncio.wait(tasks, timeout=IO_TIMEOUT_S + 1)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--rate", type=float, default=20.0, help="data frames per second per client (0: pings only)")
    ap.add_argument("--duration", type=float, default=300.0, help="stop after this many seconds")
    args = ap.parse_args()

    run = asyncio.run(run_all(args))
    for e in run.errors:
        print(f"load_clients: error: {e}", file=sys.stderr, flush=True)
    print(f"done frames={run.frames}", flush=True)
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
