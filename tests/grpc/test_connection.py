"""GrpcConnection from bytes, no sockets: two cores joined by a byte pipe, or a raw h2 peer."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import pytest

from weedpy.grpc import (
    ConnectionClosed,
    ConnectionSettings,
    DataReceived,
    GrpcConnection,
    GrpcError,
    InputEnded,
    OutputDrained,
    RequestStarted,
    ResponseStarted,
    StreamReset,
    TrailersReceived,
    encode_message,
    request_headers,
)

SMALL = ConnectionSettings(stream_window=1000, connection_window=65535)
REQ = request_headers("/pkg.Svc/Method", b"example:1", timeout=1.5, metadata=[("k", "v")])
OK_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]
OK_TRAILERS = [(b"grpc-status", b"0")]


class Pair:
    """A client core and a server core; `pump()` moves bytes until both are quiet."""

    def __init__(self, client: ConnectionSettings = ConnectionSettings(), server: ConnectionSettings = ConnectionSettings()):
        self.client = GrpcConnection(client_side=True, settings=client)
        self.server = GrpcConnection(client_side=False, settings=server)
        self.client.initiate()
        self.server.initiate()
        self.client_events: list[object] = []
        self.server_events: list[object] = []
        self.pump()

    def pump(self) -> None:
        while True:
            c2s, s2c = self.client.data_to_send(), self.server.data_to_send()
            if not c2s and not s2c:
                return
            if c2s:
                self.server_events += self.server.receive_data(c2s)
            if s2c:
                self.client_events += self.client.receive_data(s2c)

    def take(self, side: str) -> list[object]:
        events = self.client_events if side == "client" else self.server_events
        out = list(events)
        events.clear()
        return out


def of_type(events: list[object], cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def test_unary_round_trip_events_in_wire_order() -> None:
    p = Pair()
    sid = p.client.open_stream(REQ)
    p.client.send_data(sid, encode_message(b"req"), end_stream=True)
    p.pump()
    events = p.take("server")
    assert [type(e) for e in events] == [RequestStarted, DataReceived, InputEnded]
    started = events[0]
    assert started.stream_id == sid and not started.end_stream
    assert (b":path", b"/pkg.Svc/Method") in started.headers and (b"grpc-timeout", b"1500000u") in started.headers
    assert events[1].data == encode_message(b"req") and events[1].flow_len == 8

    p.server.send_headers(sid, OK_HEADERS)
    p.server.send_data(sid, encode_message(b"resp"))
    p.server.end_stream(sid, OK_TRAILERS)
    p.pump()
    events = p.take("client")
    assert [type(e) for e in events] == [ResponseStarted, DataReceived, TrailersReceived, InputEnded]
    assert events[0].headers == tuple(OK_HEADERS) and not events[0].end_stream
    assert events[2].headers == tuple(OK_TRAILERS)
    assert p.server.is_closed(sid) and p.client.is_closed(sid)


def test_bare_end_stream_after_data_delivers_no_empty_data_event() -> None:
    p = Pair()
    sid = p.client.open_stream(REQ)
    p.client.send_data(sid, b"abc")
    p.client.end_stream(sid)
    p.pump()
    assert [type(e) for e in p.take("server")] == [RequestStarted, DataReceived, InputEnded]


def test_trailers_only_response() -> None:
    p = Pair()
    sid = p.client.open_stream(REQ, end_stream=True)
    p.pump()
    assert of_type(p.take("server"), RequestStarted)[0].end_stream
    p.server.send_headers(sid, OK_HEADERS + [(b"grpc-status", b"12")], end_stream=True)
    p.pump()
    started = of_type(p.take("client"), ResponseStarted)
    assert started[0].end_stream and (b"grpc-status", b"12") in started[0].headers


def test_non_grpc_content_type_gets_415_and_no_event() -> None:
    p = Pair()
    headers = [h for h in REQ if h[0] != b"content-type"] + [(b"content-type", b"application/json")]
    sid = p.client.open_stream(headers, end_stream=True)
    p.pump()
    assert not of_type(p.take("server"), RequestStarted)
    resp = of_type(p.take("client"), ResponseStarted)[0]
    assert resp.end_stream
    assert (b":status", b"415") in resp.headers and (b"grpc-status", b"13") in resp.headers


def test_content_type_with_subtype_is_grpc() -> None:
    p = Pair()
    headers = [h for h in REQ if h[0] != b"content-type"] + [(b"content-type", b"application/grpc+proto")]
    p.client.open_stream(headers, end_stream=True)
    p.pump()
    assert of_type(p.take("server"), RequestStarted)


def test_non_post_request_is_reset() -> None:
    p = Pair()
    headers = [(k, b"GET" if k == b":method" else v) for k, v in REQ]
    p.client.open_stream(headers, end_stream=True)
    p.pump()
    assert not of_type(p.take("server"), RequestStarted)
    reset = of_type(p.take("client"), StreamReset)[0]
    assert reset.error_code == 1  # PROTOCOL_ERROR


def test_send_respects_the_peer_window_and_resumes_on_acknowledgement() -> None:
    p = Pair(server=SMALL)  # the server grants 1000 bytes per stream
    sid = p.client.open_stream(REQ)
    p.client.send_data(sid, b"x" * 2500)
    p.client.end_stream(sid)  # queued behind the data
    assert p.client.ending(sid)
    p.pump()
    got = of_type(p.take("server"), DataReceived)
    assert sum(len(e.data) for e in got) == 1000
    assert p.client.pending(sid) == 1500

    p.server.acknowledge(sid, 1000)
    p.pump()
    events = p.take("server")
    assert sum(len(e.data) for e in of_type(events, DataReceived)) == 1000
    assert not of_type(events, InputEnded)
    assert p.client.pending(sid) == 500
    assert not of_type(p.take("client"), OutputDrained)

    p.server.acknowledge(sid, 1000)
    p.pump()
    events = p.take("server")
    assert sum(len(e.data) for e in of_type(events, DataReceived)) == 500
    assert of_type(events, InputEnded)  # the END_STREAM waited for the data
    assert of_type(p.take("client"), OutputDrained) == [OutputDrained(sid)]
    assert p.client.pending(sid) == 0 and not p.client.ending(sid)


def test_output_waits_for_the_socket_when_the_peer_opens_its_windows_and_stops_reading() -> None:
    """A peer may grant 2 GiB and read nothing: with `limit_output`, DATA beyond the limit stays
    queued (`pending`) until the shell reports bytes written, whatever the windows allow."""
    wide = ConnectionSettings(stream_window=2**31 - 1, connection_window=2**31 - 1)
    p = Pair(client=wide)
    sid = p.client.open_stream(REQ)
    p.client.end_stream(sid)
    p.pump()
    p.server.limit_output(10_000)
    p.server.send_headers(sid, OK_HEADERS)
    p.server.send_data(sid, b"x" * 35_000)
    wire = p.server.data_to_send()  # what goes to the socket now
    assert 10_000 <= len(wire) < 11_000
    assert p.server.pending(sid) == 25_000
    assert p.server.data_to_send() == b""  # nothing more until the socket took it
    drained = []
    for _ in range(3):
        drained += p.server.output_written(len(wire))
        wire = p.server.data_to_send()
    assert p.server.pending(sid) == 0 and drained == [OutputDrained(sid)]
    assert len(wire) < 6_000


@pytest.mark.parametrize("method, ctype", [(b"GET", b"application/grpc"), (b"POST", b"text/plain")])
def test_a_refused_request_reset_in_the_same_bytes_is_not_answered(method: bytes, ctype: bytes) -> None:
    """Found by the h2_events fuzz target: a request the server refuses (non-POST: reset; not
    gRPC: 415) whose RST_STREAM arrives in the same read. h2 has closed the stream by the time
    the request is screened; answering it raised StreamClosedError out of receive_data, which
    ended the whole connection."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(1, [(b":method", method), (b":scheme", b"http"), (b":path", b"/pkg.Svc/M"),
                            (b":authority", b"x"), (b"content-type", ctype)])
    client.reset_stream(1)
    server = GrpcConnection(client_side=False)
    server.initiate()
    events = server.receive_data(client.data_to_send())
    assert not of_type(events, RequestStarted)
    assert server.closed is None  # the connection goes on: a next request is served
    client.send_headers(3, REQ, end_stream=True)
    assert of_type(server.receive_data(client.data_to_send()), RequestStarted)


def test_nothing_is_acknowledged_until_asked() -> None:
    p = Pair(server=SMALL)
    sid = p.client.open_stream(REQ)
    p.client.send_data(sid, b"y" * 1000)
    p.pump()
    assert p.client.pending(sid) == 0
    p.client.send_data(sid, b"z")
    p.pump()
    assert p.client.pending(sid) == 1  # window exhausted: the server never acknowledged


def test_frames_are_split_to_the_peer_max_frame_size() -> None:
    p = Pair()
    sid = p.client.open_stream(REQ)
    p.client.send_data(sid, b"q" * 40000)
    p.pump()
    sizes = [len(e.data) for e in of_type(p.take("server"), DataReceived)]
    assert sum(sizes) == 40000 and max(sizes) <= 16384 and len(sizes) == 3


def test_reset_drops_queued_data_and_reaches_the_peer() -> None:
    p = Pair(server=SMALL)
    sid = p.client.open_stream(REQ)
    p.client.send_data(sid, b"x" * 5000)
    p.pump()
    p.take("server")
    p.client.reset_stream(sid)
    assert p.client.pending(sid) == 0
    p.pump()
    assert of_type(p.take("server"), StreamReset) == [StreamReset(sid, 8, True)]
    p.client.reset_stream(sid)  # idempotent
    with pytest.raises(GrpcError):
        p.client.send_data(sid, b"more")


def test_peer_reset_drops_our_queue() -> None:
    p = Pair(client=SMALL)
    sid = p.client.open_stream(REQ, end_stream=True)
    p.pump()
    p.server.send_headers(sid, OK_HEADERS)
    p.server.send_data(sid, b"r" * 3000)
    p.pump()
    assert p.server.pending(sid) == 2000
    p.client.reset_stream(sid)
    p.pump()
    assert of_type(p.take("server"), StreamReset)
    assert p.server.pending(sid) == 0


def test_goaway_is_reported_and_stops_new_streams() -> None:
    p = Pair()
    sid = p.client.open_stream(REQ, end_stream=True)
    p.pump()
    p.server.close()
    p.pump()
    closed = of_type(p.take("client"), ConnectionClosed)[0]
    assert closed.error_code == 0 and closed.last_stream_id == sid
    assert not p.client.can_open_stream()
    with pytest.raises(GrpcError):
        p.client.open_stream(REQ)


def test_max_concurrent_streams_is_respected() -> None:
    p = Pair(server=ConnectionSettings(max_concurrent_streams=2))
    p.client.open_stream(REQ)
    assert p.client.can_open_stream()
    p.client.open_stream(REQ)
    assert not p.client.can_open_stream()


def test_garbage_is_a_connection_error() -> None:
    server = GrpcConnection(client_side=False)
    server.initiate()
    events = server.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(events[-1], ConnectionClosed) and events[-1].error_code != 0
    assert server.closed is not None


def test_protocol_violation_sends_goaway() -> None:
    server = GrpcConnection(client_side=False)
    server.initiate()
    peer = _raw_h2_client()
    preface = peer.data_to_send()
    data_on_stream_0 = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"
    events = server.receive_data(preface + data_on_stream_0)
    assert isinstance(events[-1], ConnectionClosed) and events[-1].error_code == 1
    got = peer.receive_data(server.data_to_send())
    assert any(isinstance(e, h2.events.ConnectionTerminated) and e.error_code == 1 for e in got)


def _raw_h2_client() -> h2.connection.H2Connection:
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    c.initiate_connection()
    return c


def test_padding_counts_in_flow_len() -> None:
    server = GrpcConnection(client_side=False)
    server.initiate()
    peer = _raw_h2_client()
    peer.send_headers(1, REQ)
    peer.send_data(1, b"abc", pad_length=20)
    events = server.receive_data(peer.data_to_send())
    data = of_type(events, DataReceived)[0]
    assert data.data == b"abc" and data.flow_len == 3 + 20 + 1


def test_data_for_a_stream_nobody_handles_can_be_acknowledged_after_close() -> None:
    p = Pair(server=SMALL)
    sid = p.client.open_stream(REQ)
    p.client.send_data(sid, b"d" * 1000)
    p.pump()
    p.server.send_headers(sid, OK_HEADERS + OK_TRAILERS, end_stream=True)
    p.server.reset_stream(sid, 0)
    p.pump()
    p.server.acknowledge(sid, 1000)  # connection window restored, no error on a closed stream
    p.pump()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(min_value=1, max_value=5000)),
        st.tuples(st.just("ack"), st.integers(min_value=0, max_value=3000)),
        st.tuples(st.just("stream"), st.integers(min_value=0, max_value=2)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_flow_control_never_overruns_and_delivers_everything_in_order(ops: list[tuple[str, int]]) -> None:
    """Any mix of sends and acknowledgements on three streams: each stream's bytes arrive in order,
    unacknowledged bytes never exceed the advertised windows, and acknowledging all drains all."""
    settings_ = ConnectionSettings(stream_window=3000, connection_window=65535 + 2000)
    p = Pair(server=settings_)
    sids = [p.client.open_stream(REQ) for _ in range(3)]
    sent = {s: bytearray() for s in sids}
    got = {s: bytearray() for s in sids}
    unacked = {s: 0 for s in sids}
    current = sids[0]
    counter = 0

    def absorb() -> None:
        p.pump()
        for ev in p.take("server"):
            if isinstance(ev, DataReceived):
                got[ev.stream_id] += ev.data
                unacked[ev.stream_id] += ev.flow_len
        assert all(u <= 3000 for u in unacked.values())
        assert sum(unacked.values()) <= 65535 + 2000

    for op, n in ops:
        if op == "stream":
            current = sids[n]
        elif op == "send":
            data = bytes((counter + i) % 251 for i in range(n))
            counter += n
            sent[current] += data
            p.client.send_data(current, data)
        else:
            k = min(n, unacked[current])
            unacked[current] -= k
            p.server.acknowledge(current, k)
        absorb()
        for s in sids:
            assert got[s] == sent[s][: len(got[s])]
            assert p.client.pending(s) == len(sent[s]) - len(got[s])
    for _ in range(200):
        if not any(p.client.pending(s) for s in sids):
            break
        for s in sids:
            p.server.acknowledge(s, unacked[s])
            unacked[s] = 0
        absorb()
    assert all(got[s] == sent[s] for s in sids)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_any_bytes_give_events_or_a_closed_connection_never_an_exception(junk: bytes, client_side: bool) -> None:
    """Fuzz: after a valid handshake, whatever the peer sends must parse or close the connection."""
    p = Pair()
    sid = p.client.open_stream(REQ)
    p.pump()
    p.server.send_headers(sid, OK_HEADERS)
    p.pump()
    core = p.client if client_side else p.server
    events = core.receive_data(junk)
    for ev in events:
        assert type(ev).__module__ == "weedpy.grpc._events"
    if core.closed is not None:
        assert isinstance(events[-1], ConnectionClosed) or not events
    core.data_to_send()


def test_public_surface() -> None:
    import weedpy.grpc as g

    assert sorted(g.__all__) == sorted(set(g.__all__))
    for name in g.__all__:
        assert getattr(g, name) is not None, name
