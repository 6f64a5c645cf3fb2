"""The loopback hop of mixed mode's workers without sockets: the header a worker adds says what
the leader needs and nothing without the token passes; a client's own header of that name never
reaches the leader; the workers' evidence adds up in the leader's."""

from __future__ import annotations

import pytest

from gateway.http_proxy import backend_request_head
from weedpy.http1 import Request
from weedpy.serve.evidence import Evidence, EvidenceTally
from weedpy.serve.hop import HOP_HEADER, Hop, hop_value, new_token, parse_hop

TOKEN = new_token()


@pytest.mark.parametrize("version", ["mw-1", "step 2; with a semicolon", "v#3", "version é"])
@pytest.mark.parametrize("client", ["10.0.0.7", "2001:db8::1"])
def test_a_hop_names_the_route_the_worker_decided(version: str, client: str) -> None:
    value = hop_value(TOKEN, 3, "public", "native+verify", client, version)
    assert b"\r" not in value and b"\n" not in value and value.isascii()
    assert parse_hop(value, TOKEN) == Hop(3, "public", "native+verify", client, version)


@pytest.mark.parametrize("value", [
    None, b"", b"junk", hop_value(new_token(), 1, "admin", "native", "1.2.3.4", "v"),
    hop_value(TOKEN, 1, "admin", "native", "1.2.3.4", "v").replace(b";admin;", b";grpc;"),
    hop_value(TOKEN, 1, "admin", "native", "1.2.3.4", "v").replace(b";1;", b";x;"),
    hop_value(TOKEN, 1, "admin", "", "1.2.3.4", "v"),
    TOKEN.encode() + b";1;admin;native",
], ids=["absent", "empty", "junk", "another-token", "grpc-port-kind", "worker-not-a-number", "no-target", "cut-short"])
def test_anything_else_is_refused(value: bytes | None) -> None:
    assert parse_hop(value, TOKEN) is None


def test_tokens_differ() -> None:
    assert len({new_token() for _ in range(100)}) == 100 and len(TOKEN) == 32


def _request(headers: list[tuple[bytes, bytes]]) -> Request:
    return Request(b"POST", b"/3,01637037d6", headers, b"1.1", True, 5, False, False)


def test_the_worker_replaces_a_clients_hop_header() -> None:
    tag = (HOP_HEADER, hop_value(TOKEN, 1, "admin", "native", "10.0.0.7", "v1"))
    head = backend_request_head(_request([(b"Host", b"x"), (b"X-Weedpy-Hop", b"forged"), (b"x-weedpy-hop", b"2")]),
                                 tag)
    lines = head.split(b"\r\n")
    hops = [line for line in lines if line.lower().startswith(HOP_HEADER + b":")]
    assert hops == [HOP_HEADER + b": " + tag[1]], hops
    assert b"Content-Length: 5" in lines and b"Host: x" in lines
    # without a tag (the relay to Go) the client's headers pass as they are
    plain = backend_request_head(_request([(b"X-Weedpy-Hop", b"forged")]))
    assert b"X-Weedpy-Hop: forged" in plain.split(b"\r\n")


def test_a_workers_evidence_adds_up_in_the_leaders() -> None:
    tally = EvidenceTally()
    for status in (200, 200, 500):
        tally.answered("admin.read", "native", status >= 500)
    tally.answered("admin.read", "shadow", False)
    tally.answered("admin.read", "off", True)  # no side: not evidence
    rows = tally.take()
    assert tally.take() == []  # taken once
    evidence = Evidence(clock=lambda: 1000.0)
    evidence.answered("admin.read", "native", False)  # the leader's own answer
    evidence.merge(rows)
    w = evidence.window("admin.read", 60)
    assert (w["requests.native"], w["5xx.native"], w["requests.go"], w["5xx.go"]) == (4, 1, 1, 0)
