"""Fuzzing the parsers that read what a client, a peer or a disk hands us (targets in
fuzz_targets.py): no error but the documented ones, no hang.

The default run is a seeded smoke: Hypothesis with a fixed seed and a small example count per
target, plus properties of the HTTP/1.1 reader (the framing it reports is the framing it reads;
splitting the input anywhere changes nothing). The long run (`-m fuzz_long`, scripts/reliability
--fuzz) executes every target a million times in its own process, with atheris when it is
installed and a seeded mutation loop otherwise; docs/reliability.md records the counts.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, seed, settings, strategies as st

from tests.reliability.hostile.fuzz_targets import SEEDS, TARGETS, run_mutation
from weedpy.http1 import NEED_DATA, ConnectionClosed, Data, EndOfMessage, ProtocolError, Request, ServerConnection

SMOKE = settings(max_examples=150, deadline=timedelta(seconds=5), derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_smoke(name: str) -> None:
    target = TARGETS[name]

    @SMOKE
    @given(st.binary(max_size=2048))
    def random_bytes(data: bytes) -> None:
        target(data)

    for s in SEEDS[name]:
        target(s)
    random_bytes()
    assert run_mutation(name, 3000, seed=1) == 3000  # mutations of the seeds reach past the first checks


# -- the HTTP/1.1 reader: structure-aware requests ------------------------------------------

_tokens = st.sampled_from([
    b"Content-Length", b"content-length", b"Transfer-Encoding", b"Connection", b"Host", b"Expect", b"Upgrade", b"X-A",
])
_values = st.one_of(
    st.sampled_from([b"chunked", b"gzip, chunked", b"identity", b"0", b"5", b"12", b"close", b"keep-alive",
                     b"Content-Length", b"100-continue", b"h2c", b" chunked", b"chunked ", b"-1", b"5, 5"]),
    st.binary(max_size=12).filter(lambda v: b"\r" not in v and b"\n" not in v),
)
_header = st.tuples(_tokens, _values).map(lambda kv: kv[0] + b": " + kv[1] + b"\r\n")
_body = st.one_of(
    st.binary(max_size=40),
    st.lists(st.binary(min_size=1, max_size=9), max_size=3).map(
        lambda cs: b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in cs) + b"0\r\n\r\n"),
)
_request = st.builds(
    lambda method, version, headers, body: method + b" /3,01637037d6 " + version + b"\r\n" + b"".join(headers) + b"\r\n" + body,
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"CONNECT"]),
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0"]),
    st.lists(_header, max_size=5),
    _body,
)


def _events(raw: bytes, cuts: list[int]) -> list:
    conn = ServerConnection()
    out: list = []
    last = 0
    pieces = []
    for c in sorted(set(cuts)) + [len(raw)]:
        if raw[last:c]:
            pieces.append(raw[last:c])  # b"" would be the end of the stream
        last = max(last, c)
    for piece in pieces + [b""]:
        conn.receive_data(piece)
        try:
            while (ev := conn.next_event()) is not NEED_DATA:
                if isinstance(ev, ConnectionClosed):
                    return out
                assert not isinstance(ev, Request) or ev.wire is None or ev.wire in raw  # bytes that arrived
                out.append(ev)
        except ProtocolError as exc:
            out.append(("error", exc.status_hint))
            return out
    return out


def _merged(events: list) -> list:
    """Data pieces joined, and each Request's `wire` dropped: it holds the bytes of the read the
    head arrived in, so it depends on where the reads fell by design (`_events` checks it)."""
    out: list = []
    for ev in events:
        if isinstance(ev, Request):
            ev = ev._replace(wire=None)
        if isinstance(ev, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + ev.data)
        else:
            out.append(ev)
    return out


@seed(7)
@settings(max_examples=400, deadline=timedelta(seconds=5), database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_request, min_size=1, max_size=3).map(b"".join), st.lists(st.integers(0, 400), max_size=4))
@example(b"POST / HTTP/1.1\r\nConnection: Content-Length\r\nContent-Length: 3\r\n\r\nabc", [])
def test_http1_framing_is_what_it_reports_and_split_invariant(raw: bytes, cuts: list[int]) -> None:
    whole = _merged(_events(raw, []))
    assert _merged(_events(raw, [c for c in cuts if c <= len(raw)])) == whole
    head: Request | None = None
    body = b""
    for ev in whole:
        if isinstance(ev, Request):
            head, body = ev, b""
            assert not (ev.chunked and ev.content_length is not None)
        elif isinstance(ev, Data):
            body += ev.data
        elif isinstance(ev, EndOfMessage):
            assert head is not None
            if head.content_length is not None:
                assert len(body) == head.content_length  # a relay forwarding this length forwards this body
            elif not head.chunked:
                assert body == b""
            head = None


# -- the long run ----------------------------------------------------------------------------

@pytest.mark.fuzz_long
@pytest.mark.timeout(4 * 3600)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_long(name: str) -> None:
    runs = int(os.environ.get("WEEDPY_FUZZ_RUNS", "1000000"))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.hostile.fuzz_targets", name, str(runs), "7"],
        capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))),
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith(f"{name} executions=")][-1]
    print(line)
    assert int(line.split("executions=")[1].split()[0]) >= runs
