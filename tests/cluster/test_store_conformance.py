"""Section 7 (docs/protocol.md section 8) with `--session-store redis`, on one
node and across nodes, against a real redis-server started by the test.

Node A (--node-id 1, 2 reactors) and node B (--node-id 2) share one Redis and
are dialled straight (no balancer), so the test chooses where every resume
lands. Both keep 16 frames / 4096 bytes per session and a 10 s resume window.
Checked: the echo of a data frame is in Redis before the client has it (the
session's hash and its frame list, read right after each echo); a resume on
the same or on the other node replays exactly last_seq+1..seq, then nothing
else, and the session goes on; unknown, bad-seq and replay-gap answer as
section 7 (the connection stays in HANDSHAKE; a gap discards the session on
every node); the previous holder, on either node, gets
FLUX_ERROR session-taken-over and is closed, and the taking node counts a
takeover; eight resumes racing on two nodes leave exactly one owner; a node
killed with SIGKILL loses nothing its client was echoed; a detached session
expires from Redis after the resume window. Key layout (flux:s:<id> hash,
flux:f:<id> list, TTLs) as the issue specifies it.
"""

import json
import secrets
import socket
import threading

import pytest
from store_support import (IO_TIMEOUT, Gateway, RedisServer, echo, expect_closed, gateway_binary, hello,
                           payloads_for, recv_frame, resume, send_frame, wait_for)

REPLAY_FRAMES = 16
REPLAY_BYTES = 4096
RESUME_WINDOW = 10  # seconds
COMMON = ["--replay-frames", str(REPLAY_FRAMES), "--replay-bytes", str(REPLAY_BYTES),
          "--resume-window", f"{RESUME_WINDOW}s"]


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    if not gateway_binary():
        pytest.skip("FLUX_GATEWAY_BIN is not set (CTest sets it)")
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis"))
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with server:
        yield server


def start_node(redis, node_id, tmp_path, extra=()):
    return Gateway(gateway_binary(), ["--node-id", str(node_id), "--session-store", redis.url, *COMMON, *extra],
                   workdir=tmp_path, name=f"node{node_id}").wait_store_connected()


@pytest.fixture(scope="module")
def nodes(redis, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nodes")
    a = start_node(redis, 1, workdir, ["--reactors", "2"])
    b = start_node(redis, 2, workdir)
    try:
        yield a, b
    finally:
        codes = {g.name: g.stop() for g in (a, b)}
        assert codes == {"node1": 0, "node2": 0}, f"exit codes {codes}\n{a.log_tail()}\n{b.log_tail()}"


def detached_session(node, n, size=0):
    """A session of `node` with n echoes received, its connection closed
    without FLUX_BYE: (sid, payloads 1..n)."""
    with node.dial() as sock:
        sid = hello(sock)
        payloads = payloads_for(sid, 1, n, size)
        echo(sock, payloads)
    return sid, payloads


def nothing_more(sock):
    """After a replay: the next frame is the answer to a PING, not a stray data frame."""
    token = secrets.token_hex(4)
    send_frame(sock, f"FLUX_PING {token}".encode())
    got = recv_frame(sock)
    assert got == f"FLUX_PONG {token}".encode(), f"expected only the pong, got {got[:60]!r}"


def expect_replay(sock, sid, last_seq, seq, payloads):
    """FLUX_RESUME sid last_seq -> FLUX_READY sid seq, then exactly payloads[last_seq:seq]."""
    assert resume(sock, sid, last_seq) == f"FLUX_READY {sid} {seq}"
    for want in payloads[last_seq:seq]:
        got = recv_frame(sock)
        assert got == want, f"replayed {got[:40]!r}, want {want[:40]!r}"
    nothing_more(sock)


def still_in_handshake(sock):
    send_frame(sock, b"FLUX_HELLO 1")
    words = recv_frame(sock).decode().split()
    assert words[0] == "FLUX_READY" and words[2] == "0", words


def takeovers(node):
    return node.metric("flux_session_store_takeovers_total") or 0.0


# ---------------------------------------------------------------- storage


def test_echo_is_in_redis_before_the_client_has_it(redis, nodes):
    a, _ = nodes
    with a.dial() as sock:
        sid = hello(sock)
        sent = []
        for j in range(1, 2 * REPLAY_FRAMES + 1):
            p = payloads_for(sid, j, j)[0]
            send_frame(sock, p)
            assert recv_frame(sock) == p
            sent.append(p)
            # Read at once, no wait: the echo is written only after Redis acknowledged it.
            h = redis.hgetall(f"flux:s:{sid}")
            assert h.get("seq") == str(j) and h.get("state") == "attached", (j, h)
            frames = redis.command("LRANGE", f"flux:f:{sid}", 0, -1)
            assert frames == sent[-REPLAY_FRAMES:], f"after seq {j}: {len(frames)} frames in Redis"
        h = redis.hgetall(f"flux:s:{sid}")
        assert {"owner", "channel", "seq", "state"} <= set(h), h
        assert redis.command("TTL", f"flux:s:{sid}") > 0, "an attached session needs a lease (a TTL)"
        send_frame(sock, b"FLUX_BYE")
        assert recv_frame(sock) == b"FLUX_BYE"
    wait_for(lambda: redis.command("EXISTS", f"flux:s:{sid}", f"flux:f:{sid}") == 0, 10,
             "FLUX_BYE to delete the session from Redis")


def test_detached_session_lives_in_redis_for_the_resume_window(redis, nodes):
    a, _ = nodes
    sid, _ = detached_session(a, 3)
    wait_for(lambda: redis.hgetall(f"flux:s:{sid}").get("state") == "detached", 10, "state=detached in Redis")
    for key in (f"flux:s:{sid}", f"flux:f:{sid}"):
        ttl = redis.command("PTTL", key)
        assert 0 < ttl <= RESUME_WINDOW * 1000, f"{key}: PTTL {ttl} ms, want (0, {RESUME_WINDOW}s]"


def test_detached_session_expires_after_the_resume_window(redis, nodes, tmp_path):
    _, b = nodes
    short = start_node(redis, 3, tmp_path, ["--resume-window", "1s"])
    try:
        sid, _ = detached_session(short, 2)
        wait_for(lambda: redis.command("EXISTS", f"flux:s:{sid}", f"flux:f:{sid}") == 0, 10,
                 "the session's keys to expire (1 s window)")
        # The node's own copy has its own timer: wait for it too.
        wait_for(lambda: short.metric("flux_sessions", state="detached") == 0, 10,
                 "the node to expire its detached copy")
        for node in (short, b):
            with node.dial() as sock:
                assert resume(sock, sid, 2) == "FLUX_INVALID session-unknown", node.name
    finally:
        assert short.stop() == 0


# ---------------------------------------------------------------- resume


def test_resume_on_the_same_node_replays_exactly(nodes):
    a, _ = nodes
    sid, payloads = detached_session(a, 10)
    with a.dial() as sock:
        expect_replay(sock, sid, 4, 10, payloads)
        more = payloads_for(sid, 11, 12)
        echo(sock, more)
    with a.dial() as sock:
        expect_replay(sock, sid, 12, 12, payloads + more)


def test_resume_on_another_node_replays_exactly(redis, nodes):
    a, b = nodes
    sid, payloads = detached_session(a, 10)
    with b.dial() as sock:
        expect_replay(sock, sid, 3, 10, payloads)
        more = payloads_for(sid, 11, 15)
        echo(sock, more)
    payloads += more
    assert redis.hgetall(f"flux:s:{sid}")["seq"] == "15"
    with a.dial() as sock:  # and back
        expect_replay(sock, sid, 12, 15, payloads)
        echo(sock, payloads_for(sid, 16, 16))


def test_resume_at_the_edge_of_the_frame_bound(nodes):
    a, b = nodes
    n = 2 * REPLAY_FRAMES
    sid, payloads = detached_session(a, n)
    first_kept = n - REPLAY_FRAMES + 1
    with b.dial() as sock:  # needs exactly the frames kept
        expect_replay(sock, sid, first_kept - 1, n, payloads)
    with a.dial() as sock:  # needs one more: gap, and the session is gone
        assert resume(sock, sid, first_kept - 2) == "FLUX_INVALID replay-gap"
        still_in_handshake(sock)
    for node in (a, b):
        with node.dial() as sock:
            assert resume(sock, sid, n) == "FLUX_INVALID session-unknown", node.name


def test_resume_at_the_edge_of_the_byte_bound(redis, nodes):
    a, b = nodes
    size = 300  # 13 frames fit in 4096 bytes (with or without their 4-byte headers), 14 do not
    sid, payloads = detached_session(a, 20, size)
    kept = REPLAY_BYTES // (size + 4)
    frames = redis.command("LRANGE", f"flux:f:{sid}", 0, -1)
    assert frames == payloads[-kept:], f"{len(frames)} frames in Redis, want the last {kept}"
    with b.dial() as sock:
        expect_replay(sock, sid, 20 - kept, 20, payloads)
    with b.dial() as sock:
        assert resume(sock, sid, 20 - kept - 1) == "FLUX_INVALID replay-gap"
    with a.dial() as sock:
        assert resume(sock, sid, 20) == "FLUX_INVALID session-unknown"
    assert redis.command("EXISTS", f"flux:s:{sid}", f"flux:f:{sid}") == 0


def test_unknown_session_on_every_node(nodes):
    for node in nodes:
        for owner in (1, 2, 7):
            sid = f"{owner:04x}{secrets.token_hex(14)}"
            with node.dial() as sock:
                assert resume(sock, sid, 0) == "FLUX_INVALID session-unknown"
                still_in_handshake(sock)


def test_bad_seq_on_another_node_keeps_the_session(nodes):
    a, b = nodes
    sid, payloads = detached_session(a, 5)
    with b.dial() as sock:
        assert resume(sock, sid, 6) == "FLUX_INVALID bad-seq"
        still_in_handshake(sock)
    with b.dial() as sock:
        expect_replay(sock, sid, 5, 5, payloads)
        echo(sock, payloads_for(sid, 6, 6))


# ---------------------------------------------------------------- ownership


@pytest.mark.parametrize("where", ["same-node", "other-node"])
def test_takeover_of_an_attached_session(nodes, where):
    a, b = nodes
    new_node = a if where == "same-node" else b
    before = takeovers(new_node)
    with a.dial() as old, new_node.dial() as new:
        sid = hello(old)
        payloads = payloads_for(sid, 1, 3)
        echo(old, payloads)
        expect_replay(new, sid, 1, 3, payloads)
        assert recv_frame(old) == b"FLUX_ERROR session-taken-over"
        expect_closed(old)
        echo(new, payloads_for(sid, 4, 5))
    if where == "other-node":
        wait_for(lambda: takeovers(b) >= before + 1, 10, "node B to count the takeover")


def test_racing_resumes_on_two_nodes_leave_one_owner(nodes):
    a, b = nodes
    sid, payloads = detached_session(a, 5)
    racers = 8
    socks = [(a if i % 2 else b).dial() for i in range(racers)]
    barrier = threading.Barrier(racers)
    answers = [None] * racers

    def race(i):
        barrier.wait(IO_TIMEOUT)
        answers[i] = resume(socks[i], sid, 5)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(IO_TIMEOUT * 2)
    try:
        assert answers == [f"FLUX_READY {sid} 5"] * racers, answers
        # Every resume but the last to take ownership is taken over; the
        # survivor gets nothing unasked.
        taken, survivors = 0, []
        for i, sock in enumerate(socks):
            sock.settimeout(3)
            try:
                frame = recv_frame(sock)
            except (socket.timeout, TimeoutError):
                survivors.append(i)
                continue
            assert frame == b"FLUX_ERROR session-taken-over", frame
            expect_closed(sock)
            taken += 1
        # Safety first: whichever connections still think they hold the
        # session, exactly one gets its echo; the others are told they were
        # taken over, and their frame is never echoed.
        echoed = []
        for i in survivors:
            sock = socks[i]
            sock.settimeout(IO_TIMEOUT)
            probe = f"{sid[:8]}-probe-{i}".encode()
            send_frame(sock, probe)
            frame = recv_frame(sock)
            if frame == probe:
                echoed.append(i)
            else:
                assert frame == b"FLUX_ERROR session-taken-over", frame
                expect_closed(sock)
        assert len(echoed) == 1, f"connections echoed after the race: {echoed} (survivors {survivors})"
        # Section 7: every connection but the last owner is told at once, not
        # only when it next writes.
        assert len(survivors) == 1 and taken == racers - 1, \
            f"{len(survivors)} connections were not told session-taken-over: {survivors} (taken over {taken})"
    finally:
        for s in socks:
            s.close()


def test_node_killed_its_session_resumes_on_another(redis, nodes, tmp_path):
    """kill -9 of the holder: every echo its client received is replayable
    elsewhere; frames in flight were either persisted (and are replayed) or
    never read (the client sends them again), never both, never lost."""
    _, b = nodes
    victim = start_node(redis, 4, tmp_path)
    sock = victim.dial()
    try:
        sid = hello(sock)
        payloads = payloads_for(sid, 1, 12)
        echo(sock, payloads[:10])
        for p in payloads[10:]:  # in flight: their echoes are not read
            send_frame(sock, p)
        # Echo after persist: 10 echoes received means seq >= 10 in Redis
        # already (unless the session fell back to node-local: said below).
        h = redis.hgetall(f"flux:s:{sid}")
        assert int(h.get("seq", 0)) >= 10, (
            f"10 echoes received, Redis has {h}; node fallbacks "
            f"{victim.metric('flux_session_store_fallbacks_total')}, errors "
            f"{ {k: victim.metric('flux_session_store_errors_total', kind=k) for k in ('timeout', 'disconnect')} }")
        victim.kill()
    finally:
        sock.close()
    with b.dial() as new:
        words = resume(new, sid, 10).split()
        assert words[:2] == ["FLUX_READY", sid], words
        seq = int(words[2])
        assert 10 <= seq <= 12, f"seq {seq} after 10 echoes received and 12 sent"
        for want in payloads[10:seq]:
            assert recv_frame(new) == want
        echo(new, payloads[seq:])  # the ones the dead node never read
        nothing_more(new)
        echo(new, payloads_for(sid, 13, 13))
    assert redis.hgetall(f"flux:s:{sid}")["seq"] == "13"


def test_stats_and_healthz_show_the_store(nodes):
    a, _ = nodes
    status, body = a.get("/stats")
    assert status == 200
    stats = json.loads(body)
    total = stats["total"].get("session_store")
    assert isinstance(total, dict), f"/stats total has no session_store object: {sorted(stats['total'])}"
    assert {"connected", "commands_total", "errors_total", "pending_frames", "fallbacks_total",
            "takeovers_total"} <= set(total), total
    assert total["connected"] == 2 and total["commands_total"] > 0 and total["fallbacks_total"] == 0, total
    assert [r["session_store"]["connected"] for r in stats["reactors"]] == [1, 1]
    status, body = a.healthz()
    assert status == 200 and "degraded" not in body, (status, body)
    assert a.metric("flux_session_store_connected") == 2.0, "both reactors of node A connected"
