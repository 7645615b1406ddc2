"""Redis down or slow under a gateway with `--session-store redis`: the
gateway keeps serving, says so, counts it, and recovers by itself.

A real redis-server (tests/support/redis_server.py) and two gateways: G
(--node-id 1, 2 reactors, --session-store-timeout 300ms) carries the load,
H (--node-id 2) proves that sessions are durable again after recovery.
HOLDERS connections on G echo numbered frames one at a time for the whole
test, each echo checked for content and order (a thread per connection).

- Redis killed (SIGKILL) mid-run: every holder keeps being echoed, in order,
  nothing lost or repeated; /healthz stays 200 and says
  "degraded: session store"; flux_session_store_connected drops to 0 and
  connect/disconnect errors and the fallbacks of the writing sessions are
  counted; a resume that needs Redis answers FLUX_INVALID session-unknown
  within the timeout (plus scheduling slack); new sessions are served.
  Redis started again on the same port: every reactor reconnects,
  /healthz is no longer degraded, a new session is in Redis again and
  resumes on H with its exact replay, and a session that fell back still
  resumes on its own node.
- Redis frozen (SIGSTOP: connections open, nothing answered) until every
  holder has been echoed 30 more times and /healthz says degraded: the
  longest wait for an echo stays near the 300 ms bound, never the length of
  the freeze; the writes are counted as timeouts and their sessions fall
  back; after SIGCONT the store is used again.
"""

import secrets
import threading
import time

import pytest
from store_support import (Gateway, RedisServer, echo, gateway_binary, hello, payloads_for, recv_frame, resume,
                           send_frame, wait_for)

HOLDERS = 6
TIMEOUT_MS = 300
RECOVERY = 30  # seconds for the reconnect back-off and the "short while" of degraded


class Holder:
    """One connection echoing numbered frames one at a time until stopped."""

    def __init__(self, gateway):
        self.sock = gateway.dial()
        self.sid = hello(self.sock)
        self.received = 0
        self.payloads = []
        self.max_gap = 0.0
        self.error = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        last = time.monotonic()
        try:
            while not self.stop.is_set():
                p = payloads_for(self.sid, self.received + 1, self.received + 1, 64)[0]
                send_frame(self.sock, p)
                got = recv_frame(self.sock)
                if got != p:
                    raise AssertionError(f"echo {got[:40]!r}, want {p[:40]!r}")
                now = time.monotonic()
                self.max_gap = max(self.max_gap, now - last)
                last = now
                self.payloads.append(p)
                self.received += 1
                time.sleep(0.005)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)

    def halt(self):
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "a holder is stuck waiting for an echo"


@pytest.fixture
def setup(tmp_path):
    if not gateway_binary():
        pytest.skip("FLUX_GATEWAY_BIN is not set (CTest sets it)")
    try:
        redis = RedisServer(tmp_path)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    redis.start()
    flags = ["--session-store", redis.url, "--session-store-timeout", f"{TIMEOUT_MS}ms"]
    g = h = None
    holders = []
    try:
        g = Gateway(gateway_binary(), ["--node-id", "1", "--reactors", "2", *flags], tmp_path, "g")
        h = Gateway(gateway_binary(), ["--node-id", "2", *flags], tmp_path, "h")
        g.wait_store_connected()
        h.wait_store_connected()
        holders = [Holder(g) for _ in range(HOLDERS)]
        yield redis, g, h, holders
    finally:
        for x in holders:
            x.halt()
            x.sock.close()
        codes = {x.name: x.stop() for x in (g, h) if x}
        redis.close()
        assert set(codes.values()) <= {0}, f"gateway exit codes {codes}"


def all_echoing(holders, at_least):
    for x in holders:
        assert x.error is None, f"holder {x.sid[:8]}: {x.error}"
    return all(x.received >= at_least for x in holders)


def counts(holders):
    return [x.received for x in holders]


def healthz(gateway):
    status, body = gateway.healthz()
    assert status == 200, f"/healthz answered {status} {body!r}: the balancer would take the node out"
    return body


def degraded(gateway):
    return "degraded: session store" in healthz(gateway)


def store_metric(gateway, name, **labels):
    return gateway.metric(f"flux_session_store_{name}", **labels) or 0.0


def test_redis_killed_mid_run_and_restarted(setup):
    redis, g, h, holders = setup
    wait_for(lambda: all_echoing(holders, 20), 20, "every holder to be echoed 20 times")
    assert not degraded(g) and store_metric(g, "connected") == 2
    fallbacks_before = store_metric(g, "fallbacks_total")

    redis.kill()
    at_kill = counts(holders)
    wait_for(lambda: all(x.received >= n + 50 for x, n in zip(holders, at_kill)) and all_echoing(holders, 0), 30,
             "every holder to be echoed 50 more times with Redis down")
    wait_for(lambda: degraded(g), 10, "/healthz to say degraded: session store (with 200)")
    wait_for(lambda: store_metric(g, "connected") == 0, 10, "flux_session_store_connected to drop to 0")
    wait_for(lambda: store_metric(g, "fallbacks_total") >= fallbacks_before + HOLDERS, 10,
             f"the {HOLDERS} writing sessions to fall back")
    lost = store_metric(g, "errors_total", kind="connect") + store_metric(g, "errors_total", kind="disconnect")
    assert lost > 0, "neither connect nor disconnect errors counted with Redis down"

    # A resume that needs Redis: session-unknown after the timeout, no stall.
    with g.dial() as sock:
        t0 = time.monotonic()
        assert resume(sock, f"0002{secrets.token_hex(14)}", 1) == "FLUX_INVALID session-unknown"
        took = time.monotonic() - t0
        assert took < TIMEOUT_MS / 1000 + 2, f"the resume took {took:.2f}s with a {TIMEOUT_MS}ms bound"
    with g.dial() as sock:  # new sessions are served meanwhile (node-local)
        sid = hello(sock)
        echo(sock, payloads_for(sid, 1, 5))

    redis.start()  # same port, empty (no persistence)
    wait_for(lambda: store_metric(g, "connected") == 2, RECOVERY, "both reactors of G to reconnect")
    wait_for(lambda: store_metric(h, "connected") == 1, RECOVERY, "H to reconnect")
    wait_for(lambda: not degraded(g), RECOVERY, "/healthz of G to stop saying degraded")
    at_recovery = counts(holders)
    wait_for(lambda: all(x.received >= n + 20 for x, n in zip(holders, at_recovery)) and all_echoing(holders, 0),
             20, "every holder to go on being echoed after the recovery")

    # Durable again: a new session on G is in Redis and resumes on H.
    with g.dial() as sock:
        sid = hello(sock)
        payloads = payloads_for(sid, 1, 6)
        echo(sock, payloads)
    assert redis.hgetall(f"flux:s:{sid}").get("seq") == "6", "a session created after the recovery is not in Redis"
    with h.dial() as sock:
        assert resume(sock, sid, 2) == f"FLUX_READY {sid} 6"
        assert [recv_frame(sock) for _ in range(4)] == payloads[2:]

    # A session that fell back is still resumable on its own node.
    x = holders[0]
    x.halt()
    x.sock.close()
    n = x.received
    with g.dial() as sock:
        assert resume(sock, x.sid, n - 2) == f"FLUX_READY {x.sid} {n}"
        assert [recv_frame(sock) for _ in range(2)] == x.payloads[n - 2:]
        echo(sock, payloads_for(x.sid, n + 1, n + 1, 64))
    for y in holders[1:]:
        assert y.error is None, y.error


def test_redis_frozen_never_stalls_the_echo(setup):
    redis, g, _, holders = setup
    wait_for(lambda: all_echoing(holders, 20), 20, "every holder to be echoed 20 times")
    for x in holders:
        x.max_gap = 0.0
    timeouts_before = store_metric(g, "errors_total", kind="timeout")
    fallbacks_before = store_metric(g, "fallbacks_total")

    redis.freeze()
    try:
        frozen_at = time.monotonic()
        at_freeze = counts(holders)
        wait_for(lambda: all(x.received >= n + 30 for x, n in zip(holders, at_freeze)) and all_echoing(holders, 0),
                 15, "every holder to be echoed 30 more times with Redis frozen")
        wait_for(lambda: degraded(g), 10, "/healthz to say degraded while Redis is frozen")
        # What FluxSessionStoreUnreachable sees of a stalled Redis: not
        # connected, and timeouts (no connect error: the socket connects).
        wait_for(lambda: store_metric(g, "connected") == 0, 10, "flux_session_store_connected 0 while frozen")
        frozen_for = time.monotonic() - frozen_at
        assert frozen_for > TIMEOUT_MS / 1000, frozen_for
    finally:
        redis.thaw()
    gaps = [round(x.max_gap, 3) for x in holders]
    assert max(gaps) < TIMEOUT_MS / 1000 + 1.0, f"longest wait for an echo {gaps}s; the bound is {TIMEOUT_MS}ms"
    assert store_metric(g, "errors_total", kind="timeout") > timeouts_before, "no timeout counted"
    assert store_metric(g, "fallbacks_total") >= fallbacks_before + 1, "no fallback counted"

    wait_for(lambda: not degraded(g), RECOVERY, "/healthz to stop saying degraded after SIGCONT")
    with g.dial() as sock:
        sid = hello(sock)
        echo(sock, payloads_for(sid, 1, 3))
    assert redis.hgetall(f"flux:s:{sid}").get("seq") == "3", "the store is not used again after the freeze"
    assert all_echoing(holders, 0)
