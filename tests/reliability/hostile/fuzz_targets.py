"""Fuzz targets: each takes arbitrary bytes, feeds them to one parser, and may fail only with the
errors that parser documents. Anything else escaping (IndexError, KeyError, struct.error, a
RecursionError, ...) is a crash, and a target that does not return is a hang.

Run by the Hypothesis tests in test_fuzz.py (a seeded smoke in the default run, the long run under
the `fuzz_long` marker), and as a program for atheris or the built-in mutation loop:

    python -m tests.reliability.hostile.fuzz_targets TARGET RUNS [SEED]

which prints one line, `TARGET executions=N crashes=0 engine=...`, and exits non-zero on the first
crash with the input that caused it.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import tomllib
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import trio

from native.fileid import FidError, parse_path, parse_url_path
from native.http._gourl import BadRequestURI, parse_query, parse_request_target
from native.http._multipart import GoIOError, MultipartReader
from native.http._range import RangeError, parse_range
from native.storage._errors import StorageError
from native.storage._idx import IdxCodec
from native.storage._needle import decode_needle, parse_header
from native.storage._superblock import SuperBlock
from weedpy.grpc._connection import GrpcConnection
from weedpy.grpc._framing import MessageReader
from weedpy.grpc._metadata import decode_metadata, parse_timeout
from weedpy.grpc._status import GrpcError, ProtocolError as GrpcProtocolError
from weedpy.http1 import NEED_DATA, ClientConnection, ProtocolError, ServerConnection
from weedpy.serve.jwt import token_from_request, verify_file_id_token
from weedpy.serve.routes import RouteTableError, http_endpoint, parse_route_table, request_path

__all__ = ["TARGETS", "SEEDS", "run_mutation"]


def _split(data: bytes, n: int) -> list[bytes]:
    """The input cut into n pieces at positions taken from its first bytes (feeding order matters
    to incremental parsers)."""
    if not data:
        return [b""] * n
    cuts = sorted({data[i % len(data)] * len(data) // 256 for i in range(n - 1)})
    out, last = [], 0
    for c in cuts:
        out.append(data[last:c])
        last = c
    out.append(data[last:])
    return out


def http1_server(data: bytes) -> None:
    conn = ServerConnection(max_head=4096)
    for piece in _split(data, 3) + [b""]:
        conn.receive_data(piece)
        try:
            for _ in range(10_000):
                if conn.next_event() is NEED_DATA:
                    break
        except ProtocolError:
            return


def http1_client(data: bytes) -> None:
    conn = ClientConnection(head_only=bool(data[:1]) and data[0] & 1 == 1, max_head=4096)
    for piece in _split(data[1:], 3) + [b""]:
        conn.receive_data(piece)
        try:
            for _ in range(10_000):
                if conn.next_event() is NEED_DATA:
                    break
        except ProtocolError:
            return


def file_id(data: bytes) -> None:
    text = data.decode("latin-1")
    try:
        parse_path(text)
    except FidError:
        pass
    try:
        parse_url_path(text)
    except ValueError:
        pass


def query_and_target(data: bytes) -> None:
    text = data.decode("latin-1")
    parse_query(text)
    try:
        parse_request_target(data)
    except BadRequestURI:
        pass
    http_endpoint("admin", b"GET", request_path(data))


def range_header(data: bytes) -> None:
    size = int.from_bytes(data[:4], "big")
    try:
        parse_range(data[4:].decode("latin-1"), size)
    except RangeError:
        pass


def multipart(data: bytes) -> None:
    boundary = data[:8].decode("latin-1")
    body = data[8:]

    step = 1 + (data[0] if data else 0) % 61

    async def source() -> bytes:  # small reads, then b"" at the end
        nonlocal body
        piece, body = body[:step], body[step:]
        return piece

    async def main() -> None:
        reader = MultipartReader(source, boundary)
        for _ in range(64):
            try:
                part = await reader.next_part()
            except (GoIOError, ValueError):
                return
            for _ in range(1 << 16):
                piece, err = await part.read(4096)
                if err is not None or not piece:
                    break

    _run_coroutine(main())


def _run_coroutine(coro) -> None:
    """Drive a coroutine that awaits nothing but our own sources (no event loop needed)."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("fuzz target awaited a real event loop")


def jwt(data: bytes) -> None:
    text = data.decode("latin-1")
    query, _, rest = text.partition("\n")
    header, _, cookie = rest.partition("\n")
    token = token_from_request(query, header, [cookie])
    verify_file_id_token(b"fuzz-key", token, "3,01637037d6", now=lambda: 1.7e9)
    verify_file_id_token(b"", text, "3,01637037d6", now=lambda: 1.7e9)


def needle(data: bytes) -> None:
    version = 1 + data[0] % 3 if data else 3
    try:
        parse_header(data[1:])
        decode_needle(data[1:], version, expected_size=None)
    except StorageError:
        pass


def index(data: bytes) -> None:
    for width in (4, 5):
        codec = IdxCodec.for_width(width)
        for entry in codec.iter_entries(data):
            entry.actual_offset
            entry.is_put
        cols = codec.columns(data)
        len(cols)
        cols.top_offset_entry()
    try:
        SuperBlock.decode(data)
    except StorageError:
        pass


def grpc_framing(data: bytes) -> None:
    reader = MessageReader(max_length=1 << 16, allow_compressed=bool(data[:1]) and data[0] & 1 == 1)
    for piece in _split(data[1:], 4):
        reader.feed(piece)
        try:
            while reader.next_message() is not None:
                pass
        except (GrpcError, GrpcProtocolError):
            return
        reader.releasable()
    reader.release_all()


_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_events(data: bytes) -> None:
    """Raw bytes after a valid client preface, into the server's HTTP/2 + gRPC core."""
    conn = GrpcConnection(client_side=False)
    conn.initiate()
    conn.data_to_send()
    for piece in _split(_PREFACE + data, 3):
        events = conn.receive_data(piece)
        conn.data_to_send()
        if conn.closed is not None:
            return
        for ev in events:
            headers = getattr(ev, "headers", None)
            if headers:
                try:
                    decode_metadata(headers)
                except (GrpcError, GrpcProtocolError):
                    pass


def grpc_timeout_header(data: bytes) -> None:
    try:
        parse_timeout(data)
    except (GrpcError, GrpcProtocolError, ValueError):
        pass


def route_table(data: bytes) -> None:
    try:
        doc = tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError:
        return
    try:
        parse_route_table(doc)
    except RouteTableError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "http1_server": http1_server,
    "http1_client": http1_client,
    "file_id": file_id,
    "query_and_target": query_and_target,
    "range": range_header,
    "multipart": multipart,
    "jwt": jwt,
    "needle": needle,
    "index": index,
    "grpc_framing": grpc_framing,
    "h2_events": h2_events,
    "grpc_timeout": grpc_timeout_header,
    "route_table": route_table,
}


def _h2_seed() -> bytes:
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", "/volume_server_pb.VolumeServer/Ping"),
                         (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers"),
                         ("grpc-timeout", "1S"), ("x-bin", "AAE=")])
    c.send_data(sid, b"\x00\x00\x00\x00\x02\x08\x01", end_stream=True)
    return c.data_to_send()[len(_PREFACE):]


def _needle_seed() -> bytes:
    from native.storage._needle import Needle, encode_needle

    n = Needle(id=0x1637037D6, cookie=0x12345678, data=b"hello", name=b"a.txt", mime=b"text/plain")
    return b"\x02" + encode_needle(n, 3, append_at_ns=1)


SEEDS: dict[str, list[bytes]] = {
    "http1_server": [b"POST /3,01637037d6?a=b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\n\r\n",
                     b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.0\r\n\r\n"],
    "http1_client": [b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                     b"\x01HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"],
    "file_id": [b"/3,01637037d6", b"/3/01637037d6_2/name.jpg", b"3,01637037d6ffffffff_18446744073709551615"],
    "query_and_target": [b"/3,01637037d6?jwt=a.b.c&readDeleted=true&width=10%20", b"http://h/a%2Fb?x=%zz;y"],
    "range": [b"\x00\x00\x10\x00bytes=0-10,-5,100-", b"\x00\x00\x00\x05bytes=-0"],
    "multipart": [b"XXXXXXXX--XXXXXXXX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
                  b"Content-Type: text/plain\r\n\r\nhello\r\n--XXXXXXXX--\r\n"],
    "jwt": [b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJmaWQiOiIzLDAxNjM3MDM3ZDYifQ.sig\nBearer x.y.z\nAT=a.b.c"],
    "needle": [_needle_seed()],
    "index": [bytes(range(32)) * 3],
    "grpc_framing": [b"\x00\x00\x00\x00\x00\x03abc\x01\x00\x00\x00\x01x"],
    "h2_events": [_h2_seed()],
    "grpc_timeout": [b"10S", b"99999999H", b"1n"],
    "route_table": [b'version = "1"\ndefault = "go"\n[routes]\n"admin.read" = "native"\n"public.read" = { target = "shadow" }\n'],
}


def _mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and buf:
            del buf[pos:pos + rng.randint(1, 8)]
        elif op == 3:
            buf[pos:pos] = rng.choice([b"\r\n", b"\n", b"\r", b"0", b"-", b",", b";", b"=", b"\"", b"%", b"\x00",
                                       b"ffffffffffffffff", b"chunked", b"Content-Length: ", b"\xff\xff\xff\xff"])
        elif op == 4 and buf:
            start = rng.randrange(len(buf))
            piece = bytes(buf[start:start + rng.randint(1, 32)])
            buf[pos:pos] = piece
        elif op == 5:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            buf = buf[:pos] + bytearray(other[cut:])
        elif op == 6 and buf:
            buf[rng.randrange(len(buf))] = rng.choice([0, 0x7F, 0x80, 0xFF, 0x20, 0x09])
    return bytes(buf[:1 << 16])


def run_mutation(name: str, runs: int, seed: int = 0, time_limit: float | None = None) -> int:
    """A seeded mutation loop over the target's seeds (no coverage feedback): `runs` executions,
    or fewer if `time_limit` seconds pass first; returns how many ran. A crash propagates."""
    target = TARGETS[name]
    rng = random.Random(seed)
    corpus = list(SEEDS[name]) or [b""]
    done = 0
    deadline = time.monotonic() + time_limit if time_limit else None
    while done < runs:
        data = _mutate(rng, rng.choice(corpus), corpus)
        target(data)
        done += 1
        if done % 997 == 0:
            if len(corpus) < 256 and rng.random() < 0.05:
                corpus.append(data)
            if deadline is not None and time.monotonic() > deadline:
                break
    return done


def _main(argv: list[str]) -> int:
    name, runs = argv[0], int(argv[1])
    seed = int(argv[2]) if len(argv) > 2 else 0
    target = TARGETS[name]
    try:
        import atheris  # optional: coverage-guided when installed (`pip install atheris`)
    except ImportError:
        atheris = None
    if atheris is None:
        n = run_mutation(name, runs, seed)
        print(f"{name} executions={n} crashes=0 engine=mutation")
        return 0
    count = 0

    def one(data: bytes) -> None:
        nonlocal count
        count += 1
        target(data)
        if count == runs:
            print(f"{name} executions={count} crashes=0 engine=atheris", flush=True)

    import tempfile
    from pathlib import Path

    corpus_dir = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    for i, s in enumerate(SEEDS[name]):
        (corpus_dir / f"seed{i}").write_bytes(s)
    atheris.Setup([sys.argv[0], f"-runs={runs}", f"-seed={seed + 1}", "-max_len=4096", "-timeout=10",
                   "-print_final_stats=1", str(corpus_dir)], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
