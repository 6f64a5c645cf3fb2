"""The differ's JSON API on the gateway's admin port, under `/weedpy/diff` (whitelist applies).

    GET /weedpy/diff                    the report (JSON, schema in docs/differ.md)
    GET /weedpy/diff/html               the same as a self-contained HTML page
    GET /weedpy/diff/junit              the same as JUnit XML
    GET /weedpy/diff/fixtures           {"fixtures": [sample ids of unexplained mismatches]}
    GET /weedpy/diff/fixtures/<id>      one mismatch as a replayable fixture (`weedpy diff replay`)

`DiffAdminApi(engine, guard, inner).handle` wraps the front's handler: these paths are answered
here, everything else goes to `inner` untouched. No SeaweedFS path starts with `/weedpy/`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from difftool._engine import DiffEngine
from difftool._html import html_report
from difftool._junit import junit_xml
from weedpy.serve.guard import Guard
from weedpy.serve.routes import request_path
from weedpy.http1 import Exchange, response_head

__all__ = ["DiffAdminApi", "PREFIX"]

PREFIX = b"/weedpy/diff"


class DiffAdminApi:
    def __init__(self, engine: DiffEngine, guard: Guard, inner: Callable[[Exchange], Awaitable[None]]) -> None:
        self._engine = engine
        self._guard = guard
        self._inner = inner

    def handle(self, exch: Exchange) -> Awaitable[None]:
        """Not a coroutine itself: every other request is handed on without an extra frame."""
        req = exch.request
        if exch.port_kind != "admin" or not req.target.startswith(PREFIX):
            return self._inner(exch)
        path = request_path(req.target)
        if path != PREFIX and not path.startswith(PREFIX + b"/"):
            return self._inner(exch)
        return self._serve(exch, path)

    async def _serve(self, exch: Exchange, path: bytes) -> None:
        req = exch.request
        status, ctype, body = self._answer(exch, path)
        exch.started = True
        exch.status = status
        headers = [(b"Content-Type", ctype), (b"Content-Length", b"%d" % len(body))]
        if not req.keep_alive:
            headers.append((b"Connection", b"close"))
            exch.close_after = True
        await exch.send(response_head(status, None, headers) + (b"" if req.method == b"HEAD" else body))

    def _answer(self, exch: Exchange, path: bytes) -> tuple[int, bytes, bytes]:
        if not self._guard.allows(exch.client_host):
            return 401, b"application/json", b'{"error":"not in the whitelist"}'
        if exch.request.method not in (b"GET", b"HEAD"):
            return 405, b"application/json", b'{"error":"GET only"}'
        engine = self._engine
        rest = path[len(PREFIX):].strip(b"/")
        if rest == b"":
            return 200, b"application/json", json.dumps(engine.report(), ensure_ascii=False).encode()
        if rest == b"html":
            return 200, b"text/html; charset=utf-8", html_report(engine.report(), "weedpy differ (live)").encode()
        if rest == b"junit":
            return 200, b"application/xml", junit_xml(engine.report(), "weedpy-diff.live")
        if rest == b"fixtures":
            return 200, b"application/json", json.dumps({"fixtures": engine.fixture_ids()}).encode()
        if rest.startswith(b"fixtures/") and rest[9:].isdigit():
            doc = engine.fixture(int(rest[9:]))
            if doc is not None:
                return 200, b"application/json", json.dumps(doc, ensure_ascii=False).encode()
        return 404, b"application/json", b'{"error":"not found"}'
