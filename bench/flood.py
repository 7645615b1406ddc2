#!/usr/bin/env python3
"""Flood: non-reading clients against flux-gateway; its RSS and a probe's echo time.

    python3 bench/flood.py [options] -- GATEWAY [GATEWAY_ARGS...]
    python3 bench/flood.py [options] --port P --pid PID

With GATEWAY it starts the binary itself with `--port 0 --metrics-port 0`
appended (and stops it with SIGTERM at the end); with --port/--pid it drives
a gateway that is already running on 127.0.0.1.

Phases, each bounded in time:
  1. before   RSS sampled for 1 s with no client connected.
  2. flood    N flooders connect (SO_RCVBUF --rcvbuf set before connect, so
              their echoes back up in the gateway), send FLUX_HELLO and then
              64 KiB data frames as fast as their sockets take them, never
              reading. One probe client (a separate process, so that the
              flooders' loop never delays its timing) sends FLUX_HELLO, then
              one 64 B frame every --probe-interval and times its echo; an
              echo later than --probe-timeout, or an error, is a failure and
              the probe reconnects. Lasts --flood seconds after the flooders
              are connected.
  3. after    every flooder is closed (unread echoes pending: the kernel sends
              an RST, so the sessions detach and expire after the gateway's
              resume window); RSS is sampled for --after seconds more.
Then one fresh client must get READY and an echo for "gateway_up".

RSS (/proc/PID/status VmRSS) is sampled 4 times a second throughout. The
tool prints one JSON object (keys carry their units; MiB = 2^20 bytes):
  flooders, flood_seconds, after_seconds
  rss_before_mib, rss_peak_mib, rss_flood_end_mib
  rss_after_mib           the last sample, --after s after the last flooder left
  rss_within_96mib_at_s   seconds after the flooders left until the first
                          sample within 96 MiB of rss_before; null if none
  probe                   count, failures, p50_ms, p99_ms, max_ms, and
                          max_sent_at_s (when the slowest echo's frame was
                          sent, seconds into the flood)
  flooders_connected
  flooders_closed_by_gateway  a send failed (EPIPE, ECONNRESET); such a
                          flooder does not come back
  last_closed_by_gateway_s    seconds into the flood; null if none
  flood_sent_mib          bytes the flooders' sockets accepted
  closed_by_reason        flux_connections_closed_total at the end (/metrics)
  tcp_mem_peak_mib        the kernel's TCP buffer memory, every socket on the
                          host (/proc/net/sockstat): where the flood sits
                          outside the gateway's RSS; tcp_mem bounds it
  gateway_up, load_average (1 min: at start, flood end, end)
--samples FILE writes every sample as "seconds_since_start rss_kib phase".
Exit status: 0 when the gateway is up at the end, 1 otherwise, 2 usage.
"""

import argparse
import errno
import json
import multiprocessing
import resource
import selectors
import signal
import socket
import sys
import time

import server_process
# The framing is fluxclient's (clients/python, put on the path by flood_probe):
# the flooders need raw, never-reading sockets, which its client does not
# offer, but not a codec of their own.
from flood_probe import HOST, connect_ready, frame, one_echo, percentile, probe_main
from flood_sampler import Sampler, closed_by_reason, load1

FRAME_PAYLOAD = 65536          # 64 KiB: the gateway's default --max-frame
WITHIN_MIB = 96


# --- Flooders --------------------------------------------------------------------

class Flooder:
    __slots__ = ("sock", "pending", "offset")

    def __init__(self, sock, hello_bytes):
        self.sock, self.pending, self.offset = sock, memoryview(hello_bytes), 0


def open_flooders(n, port, rcvbuf, sel, sampler, timeout):
    """Non-blocking connects; returns the flooders whose connect completed."""
    hello_bytes = frame(b"FLUX_HELLO")
    connecting = {}
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
        s.setblocking(False)
        err = s.connect_ex((HOST, port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            continue
        connecting[s.fileno()] = s
        sel.register(s, selectors.EVENT_WRITE)
        sampler.poll("connect")
    flooders, deadline = {}, time.monotonic() + timeout
    while connecting and time.monotonic() < deadline:
        for key, _ in sel.select(min(sampler.due(), 0.25)):
            s = connecting.pop(key.fd, None)
            if s is None:
                continue
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                flooders[key.fd] = Flooder(s, hello_bytes)
            else:
                sel.unregister(s)
                s.close()
        sampler.poll("connect")
    for s in connecting.values():
        sel.unregister(s)
        s.close()
    return flooders


def flood(flooders, sel, sampler, deadline):
    """Writes frames into every writable flooder until deadline (the phase lasts
    that long even when the gateway has closed every flooder before).

    Returns (flooders the gateway closed, when the last of them was closed
    (monotonic) or None, bytes their sockets accepted in all)."""
    stream = frame(bytes(range(256)) * (FRAME_PAYLOAD // 256))
    period = len(stream)
    cycle = memoryview(stream * 4)  # any offset < period leaves >= 3 frames to send
    failed = sent = 0
    last_failed = None
    while time.monotonic() < deadline:
        timeout = min(sampler.due(), max(0.0, deadline - time.monotonic()))
        for key, _ in sel.select(timeout):
            f = flooders[key.fd]
            try:
                if f.pending is not None:
                    n = f.sock.send(f.pending)
                    f.pending = f.pending[n:] if n < len(f.pending) else None
                else:
                    n = f.sock.send(cycle[f.offset:])
                    f.offset = (f.offset + n) % period
                sent += n
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:  # the gateway closed it (slow consumer, reset)
                failed += 1
                last_failed = time.monotonic()
                sel.unregister(f.sock)
                f.sock.close()
                del flooders[key.fd]
        sampler.poll("flood")
    return failed, last_failed, sent


# --- Main ------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flooders", type=int, default=300, help="default 300")
    p.add_argument("--flood", type=float, default=30.0, help="flood phase, seconds (default 30)")
    p.add_argument("--after", type=float, default=60.0,
                   help="RSS sampled this long after the last flooder left (default 60)")
    p.add_argument("--rcvbuf", type=int, default=65536, help="flooders' SO_RCVBUF (default 65536)")
    p.add_argument("--probe-interval", type=float, default=0.010, help="seconds (default 0.010)")
    p.add_argument("--probe-timeout", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--connect-timeout", type=float, default=20.0, help="seconds (default 20)")
    p.add_argument("--port", type=int, help="a running gateway's client port (with --pid)")
    p.add_argument("--pid", type=int, help="its pid (for RSS)")
    p.add_argument("--metrics-port", type=int, help="its metrics port (optional)")
    p.add_argument("--log", help="the started gateway's stdout and stderr go here")
    p.add_argument("--samples", help="write every RSS sample here")
    p.add_argument("gateway", nargs=argparse.REMAINDER, help="-- GATEWAY [ARGS...]")
    args = p.parse_args()
    if args.gateway and args.gateway[0] == "--":
        args.gateway = args.gateway[1:]
    if bool(args.gateway) == bool(args.port and args.pid):
        p.error("give either -- GATEWAY [ARGS] or --port and --pid")
    if args.flooders < 0 or args.flood <= 0 or args.after < 0:
        p.error("--flooders >= 0, --flood > 0, --after >= 0")
    return args


def summarise(args, sampler, marks, probe, extra):
    samples = sampler.samples
    before = [k for _, k, ph in samples if ph == "before"]
    rss_before = sorted(before)[len(before) // 2] if before else None
    mib = lambda kib: None if kib is None else round(kib / 1024, 1)
    at = lambda t: max((s for s in samples if s[0] <= t), key=lambda s: s[0], default=(0, None))[1]
    within = next((round(t - marks["left"], 2) for t, k, ph in samples if ph == "after"
                   and rss_before is not None and k <= rss_before + WITHIN_MIB * 1024), None)
    latencies, failures, worst_at = probe
    ms = lambda v: None if v is None else round(v * 1000, 2)
    return dict(
        flooders=args.flooders, flood_seconds=args.flood, after_seconds=args.after,
        rss_before_mib=mib(rss_before),
        rss_peak_mib=mib(max((k for _, k, _ in samples), default=None)),
        rss_flood_end_mib=mib(at(marks["flood_end"])),
        rss_after_mib=mib(samples[-1][1] if samples else None),
        rss_within_96mib_at_s=within,
        probe=dict(count=len(latencies), failures=failures, p50_ms=ms(percentile(latencies, 50)),
                   p99_ms=ms(percentile(latencies, 99)), max_ms=ms(max(latencies, default=None)),
                   max_sent_at_s=None if worst_at is None else round(worst_at, 2)),
        **extra)


def main():
    args = parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the started gateway inherits it
    if args.flooders + 64 > hard:
        sys.exit("flood: %d flooders need more than the open-file limit %d" % (args.flooders, hard))
    if not args.gateway:
        return measure(args, None, args.port, args.metrics_port, args.pid)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        gateway = server_process.start(args.gateway, ("--port", "0", "--metrics-port", "0"), args.log,
                                       timeout=10, new_session=True)
    except RuntimeError as e:
        sys.exit("flood: %s" % e)
    try:
        return measure(args, gateway.proc, gateway.port, gateway.metrics_port, gateway.pid)
    finally:  # however the tool ends, the gateway it started does not outlive it
        if gateway.running():
            gateway.stop(timeout=15)


def measure(args, proc, port, metrics_port, pid):
    """The three phases against the gateway at port / pid; prints the JSON."""
    load = [load1()]
    ctx = multiprocessing.get_context("fork")
    start, stop = ctx.Event(), ctx.Event()
    recv_end, send_end = ctx.Pipe(duplex=False)
    probe_args = (port, start, stop, args.probe_interval, args.probe_timeout, send_end)
    prober = ctx.Process(target=probe_main, daemon=True, args=probe_args)
    prober.start()  # before the flooders exist: it inherits none of their sockets
    send_end.close()

    t0 = time.monotonic()
    sampler = Sampler(pid, t0)
    marks = {}
    sampler.sleep_until(t0 + 1.0, "before")
    sel = selectors.DefaultSelector()
    flooders = open_flooders(args.flooders, port, args.rcvbuf, sel, sampler, args.connect_timeout)
    connected = len(flooders)
    start.set()
    marks["flood_start"] = time.monotonic() - t0
    failed, last_failed, sent = flood(flooders, sel, sampler, time.monotonic() + args.flood)
    stop.set()
    marks["flood_end"] = time.monotonic() - t0
    load.append(load1())
    for f in flooders.values():
        sel.unregister(f.sock)
        f.sock.close()  # unread echoes pending: RST
    marks["left"] = time.monotonic() - t0
    probe = recv_end.recv() if recv_end.poll(args.probe_timeout + 5) else ([], 0, None)
    prober.join(5)
    sampler.sleep_until(t0 + marks["left"] + args.after, "after")

    up = proc is None or proc.poll() is None
    if up:
        try:
            with connect_ready(port, 10) as s:
                one_echo(s, 0)
        except OSError:
            up = False
    reasons = closed_by_reason(metrics_port) if up else None
    load.append(load1())
    if args.samples:
        with open(args.samples, "w") as f:
            f.writelines("%.2f %d %s\n" % s for s in sampler.samples)
    extra = dict(flooders_connected=connected, flooders_closed_by_gateway=failed,
                 last_closed_by_gateway_s=None if last_failed is None
                 else round(last_failed - t0 - marks["flood_start"], 2),
                 flood_sent_mib=round(sent / 1048576, 1), closed_by_reason=reasons,
                 tcp_mem_peak_mib=round(sampler.tcp_mem_peak * resource.getpagesize() / 1048576, 1),
                 gateway_up=up, load_average=load)
    print(json.dumps(summarise(args, sampler, marks, probe, extra)))
    return 0 if up else 1


if __name__ == "__main__":
    sys.exit(main())
