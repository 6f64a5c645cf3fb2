"""Reads of volumes that live elsewhere: proxyReqToTargetServer's proxy and redirect modes.

Proxy: GET (even for HEAD) to the other server with the client's headers and the query plus
`proxied=true` (re-encoded, keys sorted), then its status, headers (minus Server) and body; like
Go's http.Client, `Accept-Encoding: gzip` is added when the client sent none and no Range, and a
gzip answer is then decompressed transparently. Redirect: 301 to `/<vid>,<fid>` keeping only
`collection`, with `proxied=true`.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import AsyncIterator

from native.http._common import empty
from native.http._gourl import encode_values, path_escape
from native.http._request import GoRequest
from native.http._upstream import UpstreamError, open_request
from weedpy.http1 import GoHeader, GoResponse, UpstreamPool, canonical_key

__all__ = ["pick_target", "proxy_response", "redirect_response", "html_escape"]


def pick_target(urls: list[str], self_url: str) -> str | None:
    """Shuffle, then the first location whose Url does not contain ip:port of this server."""
    urls = list(urls)
    if len(urls) >= 2:
        random.shuffle(urls)
    for u in urls:
        if self_url not in u:
            return u
    return None


def html_escape(s: str) -> str:
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&#34;"))


def _hex_escape_non_ascii(s: str) -> str:
    return "".join("%%%02X" % ord(c) if ord(c) >= 0x80 else c for c in s)


def redirect_response(h: GoHeader, req: GoRequest, target: str, vid: str, fid: str, scheme: str = "http") -> GoResponse:
    """Go's 301 to the volume's other server; `scheme` is https when https.client is enabled (NormalizeUrl)."""
    values: dict[str, list[str]] = {}
    c = req.form_value("collection")
    if c != "":
        values["collection"] = [c]
    values["proxied"] = ["true"]
    host = target.split("://", 1)[-1]
    url = f"{scheme}://{host}" + path_escape(f"/{vid},{fid}") + "?" + encode_values(values)
    h.set("Location", _hex_escape_non_ascii(url))
    body = b""
    if req.method in ("GET", "HEAD"):
        h.set("Content-Type", "text/html; charset=utf-8")
    if req.method == "GET":
        body = ('<a href="' + html_escape(url) + '">Moved Permanently</a>.\n\n').encode("latin-1")
    return GoResponse(301, h, body)


async def proxy_response(h: GoHeader, req: GoRequest, pool: UpstreamPool, target: str) -> tuple[GoResponse, object]:
    """(response, context manager to close once the body has been sent)."""
    q = {k: list(v) for k, v in req.query.values.items()}
    q["proxied"] = ["true"]
    path_and_query = req.url.escaped_path + "?" + encode_values(q)
    headers: list[tuple[str, str]] = []
    for k, vs in req.headers.items():
        if k in ("Host", "Connection", "Content-Length", "Transfer-Encoding", "Keep-Alive", "Te", "Trailer", "Upgrade",
                 "Proxy-Connection"):
            continue
        for v in vs:
            headers.append((k, v))
    if "User-Agent" not in req.headers:
        headers.append(("User-Agent", "Go-http-client/1.1"))
    auto_gzip = req.header("Accept-Encoding") == "" and req.header("Range") == ""
    if auto_gzip:
        headers.append(("Accept-Encoding", "gzip"))
    host = target.split("://", 1)[-1]
    cm = open_request(pool, host, "GET", path_and_query, headers)
    try:
        resp = await cm.__aenter__()
    except UpstreamError:
        return empty(h, 500), None
    gunzip = auto_gzip and (resp.header(b"content-encoding") or b"").lower() == b"gzip"
    for k, v in resp.headers:
        ck = canonical_key(k.decode("latin-1"))
        if ck in ("Server", "Connection", "Transfer-Encoding", "Keep-Alive"):
            continue
        if gunzip and ck in ("Content-Encoding", "Content-Length"):
            continue
        h.add(ck, v.decode("latin-1"))

    async def body() -> AsyncIterator[bytes]:
        try:
            if gunzip:
                d = zlib.decompressobj(16 + 15)
                async for piece in resp.body():
                    out = d.decompress(piece)
                    if out:
                        yield out
                tail = d.flush()
                if tail:
                    yield tail
            else:
                async for piece in resp.body():
                    yield piece
        except (UpstreamError, zlib.error):
            return

    length = None if gunzip else _length(h)
    it = body().__aiter__()
    if length is None:
        # Go computes a Content-Length for a body that fits its 2 KiB buffer, else chunks it.
        buf = bytearray()
        try:
            while len(buf) <= 2048:
                buf += await it.__anext__()
        except StopAsyncIteration:
            return GoResponse(resp.status, h, bytes(buf)), cm
        return GoResponse(resp.status, h, stream=_prepend(bytes(buf), it)), cm
    return GoResponse(resp.status, h, stream=it, stream_length=length), cm


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for piece in rest:
        yield piece


def _length(h: GoHeader) -> int | None:
    v = h.get("Content-Length")
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None
