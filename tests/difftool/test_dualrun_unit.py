"""Dual-run targets with in-process fake sides, no sockets: the client always gets the serving side's
bytes without waiting for the other side; injected differences are found; queues are bounded;
writes are mirrored in order and reads wait for the writes before them."""

from __future__ import annotations

import functools

import trio
import trio.testing

from difftool._capture import capture_grpc
from difftool._dualrun import build_dual_run
from difftool._engine import EngineConfig
from difftool._tee_http import CaptureStream
from weedpy.serve.grpc_front import GrpcFront, NamedTarget
from weedpy.serve.routes import Target, parse_route_table
from proto import volume_server_pb2 as vs
from proto.services import RPCS
from difftool import GrpcRequest
from weedpy.grpc import ConnectionPool, GrpcError, Router, ServerOptions, Status, serve_connection
from weedpy.http1 import Exchange, ServerConnection, simple_response

SIDES = {"go": lambda: ((), (), "fake go"), "native": lambda: ((), (), "fake native")}
P = "/volume_server_pb.VolumeServer/"


def responder(body: bytes = b'{"ok":1}', headers: tuple = ((b"Content-Type", b"application/json"),),
              status: int = 200, gate: trio.Event | None = None, log: list | None = None):
    async def handle(exch: Exchange) -> None:
        data = b""
        while chunk := await exch.receive_body():
            data += chunk
        if gate is not None:
            await gate.wait()
        if log is not None:
            log.append((exch.request.method, exch.request.target, data))
        exch.started = True
        exch.status = status
        await exch.send(simple_response(status, body, headers))
    return handle


def client(raw: bytes) -> tuple[Exchange, CaptureStream]:
    conn = ServerConnection()
    conn.receive_data(raw)
    head = conn.next_event()
    stream = CaptureStream(1 << 30)
    return Exchange(head, conn, stream, 5.0, "10.0.0.7", 8080, "admin"), stream  # type: ignore[arg-type]


def table(routes: dict, default: str = "go"):
    return parse_route_table({"version": "t1", "default": default, "routes": routes})


def dual(routes, go_http, native_http, go_grpc=None, native_grpc=None, **cfg):
    return build_dual_run(routes, go_http=go_http, native_http=native_http, go_grpc=go_grpc or Router(),
                          native_grpc=native_grpc or Router(), go_grpc_options=ServerOptions(),
                          native_grpc_options=ServerOptions(), sides=SIDES, config=EngineConfig(**cfg))


GET = b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_identical_traffic_is_silent() -> None:
    routes = table({"admin.read": {"target": "shadow", "sample_pct": 100}})
    d = dual(routes, responder(), responder())
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        for _ in range(5):
            exch, _ = client(GET)
            await d.http_targets[routes.lookup("admin.read").target](exch)
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    assert d.engine.aggregator.counts("admin.read") == {
        "compared": 5, "matched": 5, "mismatched": 0, "noise": 0, "ignored": 0, "dropped": 0}


async def test_injected_header_and_byte_found_and_client_untouched() -> None:
    routes = table({"admin.read": "shadow"})
    go = responder(b'{"ok":1}', ((b"Content-Type", b"application/json"), (b"X-A", b"1")))
    native = responder(b'{"ok":2}', ((b"Content-Type", b"application/json"), (b"X-A", b"2")))
    d = dual(routes, go, native)
    reference, ref_stream = client(GET)
    await go(reference)
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        exch, stream = client(GET)
        await d.http_targets[routes.lookup("admin.read").target](exch)
        assert bytes(stream.data) == bytes(ref_stream.data)  # exactly Go's bytes
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    report = d.engine.report()
    (ep,) = report["endpoints"]
    assert ep["mismatched"] == 1 and {f["field"] for f in ep["fields"]} == {"header:x-a", "body.ok"}
    (sid,) = d.engine.fixture_ids()
    fx = d.engine.fixture(sid)
    assert fx["routes_v"] == "t1" and fx["versions"] == {"go": "fake go", "native": "fake native"}


async def test_native_verify_serves_native() -> None:
    routes = table({"admin.read": "native+verify"}, default="native")
    d = dual(routes, responder(b"go"), responder(b"native"))
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        exch, stream = client(GET)
        await d.http_targets[routes.lookup("admin.read").target](exch)
        assert bytes(stream.data).endswith(b"\r\n\r\nnative")
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    ep = d.engine.report()["endpoints"][0]
    assert ep["mismatched"] == 1 and ep["samples"]
    sample = d.engine.report()["samples"][str(ep["samples"][0])]
    assert sample["primary"]["response"]["body"] == "go" and sample["candidate"]["response"]["body"] == "native"


async def test_slow_other_side_never_blocks_and_full_queue_drops(autojump_clock: trio.abc.Clock) -> None:
    # Virtual time: the 2 s limit fails only a client that waits for the gated side, never a slow machine.
    routes = table({"admin.read": "shadow"})
    gate = trio.Event()
    d = dual(routes, responder(), responder(gate=gate), sample_queue=2, workers=1)
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        with trio.fail_after(2):  # the other side never answers; the client must not notice
            for _ in range(10):
                exch, stream = client(GET)
                await d.http_targets[routes.lookup("admin.read").target](exch)
                assert stream.data.startswith(b"HTTP/1.1 200")
                await trio.sleep(0)
        counts = d.engine.aggregator.counts("admin.read")
        assert counts["dropped"] == 7  # one running, two queued
        gate.set()
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    assert d.engine.aggregator.counts("admin.read")["matched"] == 3, d.engine.aggregator.counts("admin.read")


async def test_writes_are_mirrored_in_order_and_reads_wait_for_them() -> None:
    routes = table({"admin.read": {"target": "shadow", "sample_pct": 100}})
    seen: list = []
    gate = trio.Event()
    d = dual(routes, responder(), responder(log=seen, gate=gate))
    requests = [
        b"PUT /1,0a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none",
        b"PUT /1,0b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n",
        b"GET /1,0a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DELETE /1,0a HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        for raw in requests:
            exch, stream = client(raw)
            endpoint_target = {b"PUT": "admin.write", b"GET": "admin.read", b"DELETE": "admin.delete"}[raw.split()[0]]
            await d.http_targets[routes.lookup(endpoint_target).target](exch)
            assert stream.data.startswith(b"HTTP/1.1 200")
        gate.set()
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    # writes replayed with the serving side's time pinned (ts), so Last-Modified agrees
    assert [(m, t.split(b"?")[0], b) for m, t, b in seen] == [
        (b"PUT", b"/1,0a", b"one"), (b"PUT", b"/1,0b", b"two"), (b"GET", b"/1,0a", b""), (b"DELETE", b"/1,0a", b"")]
    assert all(t.startswith((b"/1,0a?ts=", b"/1,0b?ts=")) for m, t, _ in seen if m != b"GET")
    counts = {e: d.engine.aggregator.counts(e) for e in ("admin.write", "admin.read", "admin.delete")}
    assert counts["admin.write"]["matched"] == 2 and counts["admin.delete"]["matched"] == 1
    stores = d.engine.report()["stores"]
    assert (stores["diverged_writes"], stores["equal"], stores["mirror_pending"], stores["mirror_waits"]) == (0, None, 0, 0)


async def test_writes_taken_whole_with_buffered_body_are_mirrored() -> None:
    """The proxy and the native fast write take a body that has fully arrived with
    `buffered_body` (and may give part of it back): the mirror still gets every byte once."""
    routes = table({"admin.read": {"target": "shadow", "sample_pct": 100}})
    seen: list = []

    async def whole_body(exch: Exchange) -> None:
        body = exch.buffered_body()
        assert body is not None
        exch.unread(body[2:])  # a handler that takes a prefix and reads the rest as a stream
        while piece := await exch.receive_body():
            body = body[:2] + piece
        exch.started = True
        exch.status = 201
        await exch.send(simple_response(201, b'{"size":%d}' % len(body)))

    d = dual(routes, whole_body, responder(log=seen))
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        exch, stream = client(b"PUT /1,0a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdef")
        await d.http_targets[routes.lookup("admin.write").target](exch)
        assert stream.data.startswith(b"HTTP/1.1 201")
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    assert [(m, b) for m, _, b in seen] == [(b"PUT", b"abcdef")]


async def test_no_mirroring_without_dual_run() -> None:
    routes = table({})
    seen: list = []
    d = dual(routes, responder(), responder(log=seen))
    assert not d.engine.mirroring and set(d.http_targets) == {Target.SHADOW, Target.NATIVE_VERIFY}


async def test_oversized_bodies_are_dropped_and_counted() -> None:
    routes = table({"admin.read": "shadow"})
    big = b"x" * 5000
    d = dual(routes, responder(big), responder(big), capture_limit=1000, mirror_limit=1000)
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        exch, stream = client(GET)
        await d.http_targets[routes.lookup("admin.read").target](exch)
        assert stream.data.endswith(big)
        exch, stream = client(b"PUT /1,0a HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + b"y" * 2000)
        await d.http_targets[routes.lookup("admin.write").target](exch)
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    assert d.engine.report()["endpoints"][0]["dropped_by_reason"] == {"too_large": 1}
    assert d.engine.aggregator.counts("admin.write")["dropped"] == 1
    assert d.engine.diverged == 1 and d.engine.report()["stores"]["equal"] is False


# -- gRPC ----------------------------------------------------------------------------------------------


def router(status_file_count: int = 1, stream_count: int = 2, fail: Status | None = None) -> Router:
    r = Router()

    async def volume_status(req, ctx):
        if fail is not None:
            raise GrpcError(fail, f"volume {req.volume_id} failed")
        return vs.VolumeStatusResponse(file_count=status_file_count)

    async def read_all(req, ctx):
        for i in range(stream_count):
            yield vs.ReadAllNeedlesResponse(volume_id=1, needle_id=i)

    r.add(RPCS[P + "VolumeStatus"], volume_status)
    r.add(RPCS[P + "ReadAllNeedles"], read_all)
    return r


async def _grpc_round(routes, go: Router, native: Router, requests: list[GrpcRequest]):
    d = dual(routes, responder(), responder(), go_grpc=go, native_grpc=native)
    targets = dict(d.grpc_targets)
    targets.setdefault(routes.default.target, NamedTarget("go", go))
    front = GrpcFront(routes, targets)
    answers = []
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        c, s = trio.testing.memory_stream_pair()
        n.start_soon(functools.partial(serve_connection, s, front, peer="10.0.0.7:5"))

        async def connect():
            return c

        pool = ConnectionPool("front", 0, n, connector=connect)
        for req in requests:
            answers.append(await capture_grpc(pool, req))
        # the client has its trailers before the front hands the recorded call to the engine
        with trio.fail_after(5):
            while sum(d.engine.aggregator.counts(e)["compared"] + d.engine.aggregator.counts(e)["dropped"]
                      for e in {r.method for r in requests}) < len(requests):
                await d.engine.wait_idle()
                await trio.sleep(0.001)
        pool.close()
        n.cancel_scope.cancel()
    return d, answers


async def test_grpc_extra_message_and_status_difference() -> None:
    routes = table({P + "VolumeStatus": "shadow", P + "ReadAllNeedles": "shadow"})
    status_req = GrpcRequest(P + "VolumeStatus", (), (vs.VolumeStatusRequest(volume_id=3).SerializeToString(),))
    all_req = GrpcRequest(P + "ReadAllNeedles", (), (vs.ReadAllNeedlesRequest(volume_ids=[1]).SerializeToString(),))
    d, answers = await _grpc_round(routes, router(fail=Status.NOT_FOUND), router(stream_count=3, fail=Status.INTERNAL),
                                   [status_req, all_req])
    # the client got Go's answers: NOT_FOUND (trailers-only), two messages
    assert answers[0].response.trailers_only and answers[0].response.trailer(b"grpc-status") == b"5"
    assert len(answers[1].response.messages) == 2
    eps = {e["endpoint"]: e for e in d.engine.report()["endpoints"]}
    assert {f["field"] for f in eps[P + "VolumeStatus"]["fields"]} == {"grpc-status"}
    assert {f["field"] for f in eps[P + "ReadAllNeedles"]["fields"]} == {"message-count"}


async def test_grpc_identical_is_silent() -> None:
    routes = table({P + "VolumeStatus": "shadow"})
    req = GrpcRequest(P + "VolumeStatus", (), (vs.VolumeStatusRequest(volume_id=3).SerializeToString(),))
    d, answers = await _grpc_round(routes, router(), router(), [req, req, req])
    assert all(a.response.trailer(b"grpc-status") == b"0" for a in answers)
    assert d.engine.aggregator.counts(P + "VolumeStatus")["matched"] == 3, d.engine.report()["endpoints"]


async def test_full_mirror_lane_holds_the_connection_after_the_answer(autojump_clock: trio.abc.Clock) -> None:
    # Virtual time: the pauses below and the lane's 0.3 s wait are exact, whatever the machine's load.
    routes = table({"admin.read": "shadow"})
    gate = trio.Event()
    d = dual(routes, responder(), responder(gate=gate), mirror_queue=1, mirror_wait=0.3)
    put = b"PUT /1,0a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"
    handler = d.http_targets[routes.lookup("admin.write").target]
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        for _ in range(2):  # one being applied (gated), one queued
            exch, _ = client(put)
            await handler(exch)
        exch, stream = client(put)
        done = trio.Event()

        async def third() -> None:
            await handler(exch)
            done.set()

        n.start_soon(third)
        await trio.sleep(0.1)
        assert stream.data.startswith(b"HTTP/1.1 200") and not done.is_set()  # answered, then held
        await done.wait()  # gave up after mirror_wait: dropped, counted, the stores may differ
        assert d.engine.diverged == 1 and d.engine.aggregator.counts("admin.write")["dropped"] == 1
        exch, stream = client(put)
        n.start_soon(handler, exch)
        await trio.sleep(0.05)
        gate.set()
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    assert d.engine.mirror_waits >= 1 and d.engine.aggregator.counts("admin.write")["matched"] == 3


async def test_the_mirrored_side_answers_only_after_earlier_writes(autojump_clock: trio.abc.Clock) -> None:
    """Go owns the writes; a read served by native waits until native has applied them (virtual
    time: the pause before the check is exact)."""
    routes = table({"admin.read": "native+verify"})
    seen: list = []
    gate = trio.Event()
    d = dual(routes, responder(), responder(log=seen, gate=gate), catch_up_wait=5)
    write = d.http_targets[routes.lookup("admin.write").target]
    read = d.http_targets[routes.lookup("admin.read").target]
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        exch, _ = client(b"PUT /1,0a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        await write(exch)  # answered by Go; the mirror to native is gated
        exch, stream = client(GET)
        n.start_soon(read, exch)
        await trio.sleep(0.1)
        assert not stream.data and not seen  # native has not applied the write: the read waits
        gate.set()
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    assert [m for m, _, _ in seen] == [b"PUT", b"GET"] and stream.data.startswith(b"HTTP/1.1 200")
    assert d.engine.catch_up_waits == 1


def ticking(extra: tuple = (), start: int = 0):
    """A side whose X-Now header changes on every answer (a clock), like Go's own per-response values.
    Sides given different `start`s never show the same value, whatever order each side serves the
    requests in (counters starting together would match whenever two sides happen to keep step)."""
    import itertools

    counter = itertools.count(start)

    async def handle(exch: Exchange) -> None:
        while await exch.receive_body():
            pass
        exch.started = True
        exch.status = 200
        await exch.send(simple_response(200, b"{}", ((b"X-Now", b"%d" % next(counter)),) + extra))
    return handle


async def test_live_control_learns_noise() -> None:
    routes = table({"admin.read": "shadow"})
    sides = {**SIDES, "go-control": lambda: ((), (), "fake control")}
    d = build_dual_run(routes, go_http=ticking(), native_http=ticking(((b"X-Extra", b"1"),), start=1000),
                       go_grpc=Router(), native_grpc=Router(), go_grpc_options=ServerOptions(),
                       native_grpc_options=ServerOptions(), sides=sides, config=EngineConfig(sample_share=1.0),
                       control_http=ticking(start=2000))
    async with trio.open_nursery() as n:
        await n.start(d.engine.run)
        for i in range(20):
            exch, _ = client(GET)
            await d.http_targets[routes.lookup("admin.read").target](exch)
        await d.engine.wait_idle()
        n.cancel_scope.cancel()
    ep = d.engine.report()["endpoints"][0]
    classes = {f["field"]: f["class"] for f in ep["fields"]}
    assert classes == {"header:x-now": "noise", "header:x-extra": "real"}
    assert ep["control_compared"] == 20 and d.engine.report()["meta"]["control"] is True
