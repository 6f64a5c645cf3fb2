"""ClientConnection counts the response head's size only once the bytes fed could reach the
limit: it refuses exactly the heads, at exactly the point, that counting every line refuses."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, example, given, seed, settings, strategies as st

from weedpy.http1 import NEED_DATA, ClientConnection, ConnectionClosed, ProtocolError


def read_all(conn: ClientConnection, pieces: list[bytes]) -> list[object]:
    """Every event, then the refusal (its status and message) if there is one."""
    out: list[object] = []
    try:
        for piece in [*pieces, b""]:
            conn.receive_data(piece)
            while (ev := conn.next_event()) is not NEED_DATA and not isinstance(ev, ConnectionClosed):
                out.append(ev)
            if isinstance(ev, ConnectionClosed):
                break
    except ProtocolError as exc:
        out.append(("refused", exc.status_hint, str(exc)))
    return out


def counting_every_line(max_head: int) -> ClientConnection:
    conn = ClientConnection(max_head=max_head)
    conn._count_head = True  # the reader as it was: every header line counted from the first byte
    return conn


_header = st.builds(lambda n, v: n + b": " + v + b"\r\n", st.sampled_from([b"A", b"Etag", b"X-Long-Name", b"C"]),
                    st.binary(min_size=0, max_size=60).map(lambda b: b.replace(b"\r", b"r").replace(b"\n", b"n")
                                                          .replace(b"\x00", b"0")))
_response = st.builds(
    lambda info, headers, body: info + b"HTTP/1.1 200 OK\r\n" + b"".join(headers)
    + b"Content-Length: %d\r\n\r\n" % len(body) + body,
    st.sampled_from([b"", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]),
    st.lists(_header, max_size=8),
    st.sampled_from([b"", b"hello"]),
)


def cut(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)])]


@seed(13)
@settings(max_examples=800, deadline=timedelta(seconds=5), database=None, suppress_health_check=list(HealthCheck))
@given(_response, st.lists(st.integers(0, 600), max_size=4), st.integers(20, 700))
@example(b"HTTP/1.1 200 OK\r\nA: " + b"a" * 300 + b"\r\nContent-Length: 0\r\n\r\n", [], 200)
@example(b"HTTP/1.1 200 OK\r\nA: " + b"a" * 300 + b"\r\nContent-Length: 0\r\n\r\n", [150], 200)
def test_refusals_match_counting_every_line(raw: bytes, cuts: list[int], max_head: int) -> None:
    pieces = cut(raw, cuts)
    assert read_all(ClientConnection(max_head=max_head), pieces) == read_all(counting_every_line(max_head), pieces)


def test_a_head_past_the_limit_is_refused() -> None:
    raw = b"HTTP/1.1 200 OK\r\nA: " + b"a" * 300 + b"\r\nContent-Length: 0\r\n\r\n"
    assert read_all(ClientConnection(max_head=200), [raw])[-1][:2] == ("refused", 502)
    assert read_all(ClientConnection(max_head=200), [raw[:100], raw[100:]])[-1][:2] == ("refused", 502)
