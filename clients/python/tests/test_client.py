"""fluxclient against the real gateway (each test bounded by run(..., timeout))."""

import asyncio
import os
import re

import pytest

from conftest import REPO, Proxy, run, start_gateway_on, wait_until

import fluxclient
from fluxclient import codec

FAST = dict(backoff_initial=0.02, backoff_max=0.25, reconnect_timeout=15.0)


def payload(i, size=None):
    body = b"frame %d " % i
    return body + bytes([97 + i % 26]) * ((size if size is not None else i % 300))


def test_echo_and_close(gateway):
    gw = gateway()

    async def main():
        async with fluxclient.connect("127.0.0.1", gw.port, window=256) as c:
            assert re.fullmatch(r"[0-9a-f]{32}", c.session_id)
            assert c.seq == 0
            sent = [payload(i) for i in range(200)] + [b""]
            for p in sent:
                await c.send(p)
            got = [await c.recv() for _ in sent]
            assert got == sent
            assert c.seq == len(sent) and c.in_flight == 0
        # close() sent FLUX_BYE and got it back: the session is over.
        with pytest.raises(fluxclient.ClientClosed):
            await c.recv()
        with pytest.raises(fluxclient.ClientClosed):
            await c.send(b"x")

    run(main())


def test_send_refuses_control_and_oversized(gateway):
    gw = gateway()

    async def main():
        async with fluxclient.connect("127.0.0.1", gw.port, max_frame=1000) as c:
            with pytest.raises(ValueError):
                await c.send(b"FLUX_PING x")
            with pytest.raises(ValueError):
                await c.send(b"y" * 1001)
            await c.send(b"flux_lowercase is data")
            assert await c.recv() == b"flux_lowercase is data"

    run(main())


def test_ping(gateway):
    gw = gateway()

    async def main():
        async with fluxclient.connect("127.0.0.1", gw.port) as c:
            rtts = [await c.ping(timeout=5) for _ in range(5)]
            assert all(0 <= r < 5 for r in rtts)
            await c.send(b"after pings")
            assert await c.recv() == b"after pings"

    run(main())


def test_heartbeats_keep_a_quiet_client_alive(gateway):
    gw = gateway("--idle-timeout", "600ms")

    async def main():
        async with fluxclient.connect("127.0.0.1", gw.port, heartbeat_interval=0.1, **FAST) as c:
            await asyncio.sleep(2.0)  # quiet for over three idle timeouts: the scenario itself
            assert c.reconnects == 0
            await c.send(b"still here")
            assert await c.recv() == b"still here"
        # Without heartbeats the idle timeout fires, and the client resumes.
        async with fluxclient.connect("127.0.0.1", gw.port, heartbeat_interval=None, **FAST) as c:
            sid = c.session_id
            await c.send(b"one")
            assert await c.recv() == b"one"
            await wait_until(lambda: c.reconnects >= 1, 10, "a resume after idle-timeout")
            await c.send(b"two")
            assert await c.recv() == b"two"
            assert c.session_id == sid and c.seq == 2

    run(main())


def test_resume_after_local_rst(gateway):
    """The client's own socket dies with an RST (SO_LINGER 0 close)."""
    gw = gateway()

    async def main():
        async with fluxclient.connect("127.0.0.1", gw.port, **FAST) as c:
            sid = c.session_id
            sent = [payload(i) for i in range(300)]
            got = []
            for i, p in enumerate(sent):
                await c.send(p)
                if i % 60 == 30:
                    c.abort_connection()
                while c.in_flight > 20:
                    got.append(await c.recv())
            while len(got) < len(sent):
                got.append(await c.recv())
            assert got == sent
            assert c.session_id == sid and c.seq == len(sent)
            assert c.reconnects == 5

    run(main())


def test_resume_replays_and_resends_exactly_once(gateway):
    """Through a relay: echoes lost on the way back are replayed by the
    server, frames lost on the way in are sent again by the client."""
    gw = gateway()

    async def main():
        proxy = await Proxy(gw.port).start()
        try:
            async with fluxclient.connect("127.0.0.1", proxy.port, **FAST) as c:
                sid = c.session_id
                for i in range(10):
                    await c.send(payload(i))
                assert [await c.recv() for _ in range(10)] == [payload(i) for i in range(10)]
                batch1 = [payload(i) for i in range(10, 15)]
                batch2 = [payload(i) for i in range(15, 20)]
                proxy.hold_down = True  # echoes of batch1 stop in the relay
                for p in batch1:
                    await c.send(p)
                await wait_until(lambda: proxy.held_down >= sum(len(p) + 4 for p in batch1), 5, "batch1 echoed")
                proxy.hold_up = True  # batch2 never reaches the gateway
                for p in batch2:
                    await c.send(p)
                await wait_until(lambda: proxy.held_up >= sum(len(p) + 4 for p in batch2), 5, "batch2 sent")
                proxy.reset_all()
                assert [await c.recv() for _ in range(10)] == batch1 + batch2
                assert (c.reconnects, c.replayed, c.resent) == (1, 5, 5)
                assert c.session_id == sid and c.seq == 20
        finally:
            await proxy.close()

    run(main())


def test_resume_under_traffic_rst_and_eof(gateway):
    """2000 frames in flight while the relay cuts every connection 8 times
    (RST, and EOF without FLUX_BYE): each echo exactly once, in order."""
    gw = gateway()

    async def main():
        proxy = await Proxy(gw.port).start()
        try:
            async with fluxclient.connect("127.0.0.1", proxy.port, window=64, **FAST) as c:
                sid = c.session_id
                sent = [payload(i) for i in range(2000)]
                got = []

                allowed = 300  # the cutter lets the sender go on in steps
                more = asyncio.Event()

                async def sender():
                    for i, p in enumerate(sent):
                        while i >= allowed:
                            await more.wait()
                            more.clear()
                        await c.send(p)

                async def receiver():
                    while len(got) < len(sent):
                        got.append(await c.recv())

                cuts = 0

                async def cutter():
                    nonlocal cuts, allowed
                    for k in range(8):
                        # Cut only a live relayed connection, after fresh progress.
                        await wait_until(lambda: len(got) == len(sent) or (
                            c.connected and c.reconnects == k and proxy.pairs and len(got) >= k * 200 + 100),
                            10, f"progress before cut {k + 1}")
                        if len(got) == len(sent):
                            return
                        proxy.reset_all() if k % 2 == 0 else proxy.eof_all()
                        cuts += 1
                        allowed = len(sent) if k == 7 else allowed + 200
                        more.set()

                await asyncio.gather(sender(), receiver(), cutter())
                assert got == sent
                assert c.session_id == sid and c.seq == len(sent)
                assert cuts == 8 and c.reconnects == cuts
        finally:
            await proxy.close()

    run(main(), timeout=40)


def test_takeover(gateway):
    gw = gateway()

    async def main():
        a = await fluxclient.connect("127.0.0.1", gw.port, **FAST)
        for i in range(3):
            await a.send(payload(i))
        assert [await a.recv() for _ in range(3)] == [payload(i) for i in range(3)]
        # b claims the session as if it had received only the first echo.
        async with fluxclient.connect("127.0.0.1", gw.port, session_id=a.session_id, last_seq=1, **FAST) as b:
            assert b.session_id == a.session_id
            assert [await b.recv() for _ in range(2)] == [payload(1), payload(2)]  # replayed
            with pytest.raises(fluxclient.SessionTakenOver) as taken:
                await a.recv()
            assert taken.value.unacknowledged == []
            with pytest.raises(fluxclient.SessionTakenOver):
                await a.send(b"too late")
            await b.send(b"b's own")
            assert await b.recv() == b"b's own"
            assert b.seq == 4 and b.reconnects == 0
        await a.close()

    run(main())


def test_server_restart_starts_a_new_session(gateway):
    gw1 = gateway()

    async def main():
        c = await fluxclient.connect("127.0.0.1", gw1.port, **FAST)
        old = c.session_id
        for i in range(3):
            await c.send(payload(i))
        assert [await c.recv() for _ in range(3)] == [payload(i) for i in range(3)]
        await asyncio.to_thread(gw1.stop)  # FLUX_ERROR server-shutdown, then nothing listens
        await wait_until(lambda: not c.connected, 5, "the client to see the shutdown")
        unechoed = [b"sent while down 1", b"sent while down 2"]
        for p in unechoed:
            await c.send(p)
        gw2 = await asyncio.to_thread(start_gateway_on, gw1.port)
        try:
            with pytest.raises(fluxclient.SessionLost) as lost:
                await c.recv()
            assert isinstance(lost.value.cause, fluxclient.SessionUnknown)
            assert lost.value.old_session_id == old
            assert lost.value.new_session_id == c.session_id != old
            assert lost.value.unacknowledged == unechoed
            assert c.seq == 0 and c.in_flight == 0
            await c.send(b"new session")
            assert await c.recv() == b"new session"
            assert c.seq == 1
            await c.close()
        finally:
            await asyncio.to_thread(gw2.stop)

    run(main(), timeout=40)


def test_backpressure_small_window_large_burst(gateway):
    gw = gateway("--max-pending", "16384")

    async def main():
        async with fluxclient.connect("127.0.0.1", gw.port, window=4, window_bytes=16384) as c:
            sent = [payload(i, size=(i * 7919) % 8000) for i in range(3000)]
            got = []
            peak = 0

            async def sender():
                nonlocal peak
                for p in sent:
                    await c.send(p)
                    peak = max(peak, c.in_flight)

            async def receiver():
                while len(got) < len(sent):
                    got.append(await c.recv())
                    if len(got) % 500 == 0:
                        await asyncio.sleep(0.05)  # a slow reader now and then

            await asyncio.gather(sender(), receiver())
            assert got == sent
            assert peak <= 4

    run(main(), timeout=40)


def test_frame_too_large_is_terminal(gateway):
    gw = gateway("--max-frame", "1024")

    async def main():
        c = await fluxclient.connect("127.0.0.1", gw.port, max_frame=65536, **FAST)
        await c.send(b"fits")
        big = b"z" * 2000
        await c.send(big)
        assert await c.recv() == b"fits"
        with pytest.raises(fluxclient.FrameTooLarge) as e:
            await c.recv()
        assert e.value.code == "frame-too-large" and e.value.fatal
        assert e.value.unacknowledged == [big]
        assert c.reconnects == 0
        await c.close()

    run(main())


def test_every_documented_code_has_a_type():
    """docs/protocol.md's error table and FLUX_INVALID reasons map to classes."""
    with open(os.path.join(REPO, "docs", "protocol.md")) as f:
        doc = f.read()
    rows = re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| (yes|no) \|$", doc, re.M)
    assert len(rows) == 10
    for code, fatal in rows:
        err = fluxclient.server_error(code)
        assert type(err) is not fluxclient.ServerError, code
        assert err.code == code and err.fatal == (fatal == "yes")
        assert str(err) == f"FLUX_ERROR {code}"
    for reason in set(re.findall(r"`FLUX_INVALID ([a-z-]+)`", doc)):
        inv = fluxclient.invalid_session(reason)
        assert type(inv) is not fluxclient.InvalidSession and inv.reason == reason
    assert type(fluxclient.server_error("from-the-future")) is fluxclient.ServerError


def test_codec_reassembles_frames_cut_anywhere():
    frames = [b"", b"a", b"FLUX_PING x y", bytes(range(256)) * 10]
    stream = b"".join(codec.encode(f) for f in frames)
    for cut in (1, 3, 5, 7, 4096):
        dec = codec.FrameDecoder()
        out = []
        for i in range(0, len(stream), cut):
            out += dec.feed(stream[i:i + cut])
        assert out == frames and dec.pending == 0
    assert codec.split_control(b"FLUX_PING a b") == ("FLUX_PING", "a b")
