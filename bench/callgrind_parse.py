"""Instructions per request of the HTTP/1.1 request reader (`ServerConnection`), in-process.

Runs this file under `valgrind --tool=callgrind` with `-n` and with 6*`-n` requests per head and
prints the difference per request: one keep-alive connection fed one whole request per read,
its events drained as the server does (`receive_data`, then `next_event` until NEED_DATA). The
heads: a Go client's GET (3 headers), GETs with 6 and 8 headers (one of them
`Connection: keep-alive`), and a Go client's upload head (5 headers) with a 1 KiB body. A GET
whose header lines repeat the last request's takes the reader's short path; `go-get-alternating`
sends two Go GETs that differ in one header in turn, so that every one is parsed in full.

    .venv/bin/python bench/callgrind_parse.py -n 2000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.callgrind_inner import inner_instructions  # noqa: E402

HEADS = {
    "go-get": b"GET /3,01637037d6 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\n"
              b"Accept-Encoding: gzip\r\n\r\n",
    "get-6": b"GET /3,01637037d6?readDeleted=true HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\n"
             b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nIf-None-Match: \"abc\"\r\nX-Request-Id: 1234-5678\r\n\r\n",
    "get-8": b"GET /3,01637037d6 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
             b"Accept: text/html,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n"
             b"Connection: keep-alive\r\nRange: bytes=0-99\r\nCache-Control: no-cache\r\n\r\n",
    "post-1k": b"POST /3,01637037d6 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\n"
               b"Content-Length: 1024\r\nContent-Type: multipart/form-data; boundary=abcdef0123456789\r\n"
               b"Accept-Encoding: gzip\r\n\r\n" + b"x" * 1024,
}


HEADS["go-get-alternating"] = HEADS["go-get"].replace(b"gzip", b"gzip, br")


def run_requests(head: str, n: int) -> None:
    """The measured loop."""
    from weedpy.http1 import NEED_DATA, ServerConnection

    reads = (HEADS["go-get"], HEADS[head]) if head == "go-get-alternating" else (HEADS[head],)
    conn = ServerConnection()
    receive, next_event = conn.receive_data, conn.next_event
    for i in range(n):
        receive(reads[i % len(reads)])
        while next_event() is not NEED_DATA:
            pass


def collected(head: str, n: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same start-up in both runs
    return inner_instructions(__file__, head, "-n", str(n), env=env)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--inner", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        run_requests(args.inner, args.n)
        return 0
    for head in HEADS:
        per_request = (collected(head, 6 * args.n) - collected(head, args.n)) / (5 * args.n)
        print(f"{head}: {per_request / 1000:.1f}k instructions per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
