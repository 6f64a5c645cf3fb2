"""The native volume server's HTTP side: Go's admin and public muxes in one dispatcher.

`NativeHttp(ctx).handle(exch)` serves any request arriving on the admin or the public port the
way Go's ServeMux + volume handlers would: the mux's clean-path redirect, static files, /status,
/healthz, /ui, then the store handlers (reads, writes, deletes, OPTIONS, unsupported methods),
with the upload/download limits, the whitelist and JWTs in Go's order.
"""

from __future__ import annotations

import os
import posixpath
import random
import zlib
from collections.abc import Awaitable, Callable

import trio

from native.context import NativeContext
from native.fileid import FidError, new_volume_id, parse_key_cookie, parse_url_path
from native.gostrconv import NumError
from native.http._common import empty, handler_header, json_error, storage_call
from native.http._content import ContentError, FileBody
from native.http._delete import delete
from native.http._fast import fast_read
from native.http._fast_write import fast_write
from native.http._gourl import BadRequestURI, path_escape
from native.http._mime import MimeTable
from native.http._multipart import GoIOError
from native.http._proxy import html_escape, pick_target, proxy_response, redirect_response
from native.http._read import DropConnection, get_or_head
from native.http._static import EmbeddedStatic
from native.http._status import healthz, status
from native.http._ui import ui_page
from native.http._request import GoRequest
from native.http._sniff import detect_content_type
from native.http._throttle import InflightLimit, WaitOutcome
from native.http._upstream import UpstreamError, open_request
from native.http._write import post
from native.storage import StorageError
from proto.lazy import volume_server_pb2 as vs
from weedpy.grpc import Channel, ChannelOptions, GrpcError
from weedpy.http1 import (
    CONTINUE_100,
    Exchange,
    GoHeader,
    GoResponse,
    ProtocolError,
    go_bad_request,
    send_go_response,
    serialize_head,
    settle_body,
)
from weedpy.logs import get_logger
from weedpy.serve.guard import Guard
from weedpy.serve.jwt import expected_claim, token_from_request, verify_file_id_token

__all__ = ["NativeHttp", "Scope", "Source"]

Source = Callable[[], Awaitable[bytes]]
log = get_logger("native.http")


class Scope:
    """Per-request cleanups run once the response has been written (Go's deferred calls)."""

    __slots__ = ("_done", "_closers", "body_ended")

    def __init__(self) -> None:
        self._done: list[Callable[[], object]] = []
        self._closers: list[object] = []
        self.body_ended = False  # the request body hit its end (possibly cut short by the peer)

    @property
    def pending(self) -> bool:
        return bool(self._done or self._closers)

    def on_done(self, fn: Callable[[], object]) -> None:
        self._done.append(fn)

    def close_later(self, cm: object) -> None:
        self._closers.append(cm)

    def finish_sync(self) -> None:
        for fn in reversed(self._done):
            fn()

    async def finish(self) -> None:
        for cm in reversed(self._closers):
            try:
                await cm.__aexit__(None, None, None)  # type: ignore[attr-defined]
            except Exception:  # an upstream that broke mid-body: nothing left to tell anyone
                pass
        for fn in reversed(self._done):
            fn()


def _clean_path(p: str) -> str:
    """net/http's cleanPath (path.Clean, trailing slash kept)."""
    if p == "":
        return "/"
    if p[0] != "/":
        p = "/" + p
    np = posixpath.normpath(p)
    if np.startswith("//"):
        np = "/" + np.lstrip("/")
    if p.endswith("/") and np != "/":
        np += "/"
    return np


class NativeHttp:
    """`weed_binary`: where Go's embedded static files are read from (default: the bundled weed)."""

    def __init__(self, ctx: NativeContext, weed_binary: str | os.PathLike[str] | None = None) -> None:
        self.ctx = ctx
        cfg = ctx.cfg
        sec = ctx.security
        self.mimes = MimeTable.load()
        self.guard = Guard.from_entries(tuple(cfg.whitelist) + tuple(sec.guard_white_list))
        self.write_key = sec.jwt_signing_key.encode()
        self.read_key = sec.jwt_read_key.encode()
        self.ui_enabled = sec.jwt_signing_key == "" or sec.access_ui
        self.read_mode = cfg.read_mode
        self.file_size_limit = cfg["fileSizeLimitMB"] * 1024 * 1024
        self.read_buffer = max(1, cfg["readBufferSizeMB"]) * 1024 * 1024
        self.fix_jpg_orientation = bool(cfg["images.fix.orientation"])
        share = ctx.share  # the limits are the server's: with worker processes, counted in the shared block
        self.upload = InflightLimit(cfg["concurrentUploadLimitMB"] * 1024 * 1024, cfg["inflightUploadDataTimeout"],
                                    share.inflight(0) if share else None, share.index if share else 0)
        self.download = InflightLimit(cfg["concurrentDownloadLimitMB"] * 1024 * 1024, cfg["inflightDownloadDataTimeout"],
                                      share.inflight(1) if share else None, share.index if share else 0)
        self.server = ctx.server_header
        self.static_files = EmbeddedStatic(weed_binary, self.mimes)

    # -- security ------------------------------------------------------------------------------

    def request_jwt(self, req: GoRequest) -> str:
        return token_from_request(req.query.get("jwt"), req.header("Authorization"), req.header_values("Cookie"))

    def jwt_ok(self, req: GoRequest, vid: str, fid: str, *, write: bool) -> bool:
        key = self.write_key if write else self.read_key
        if not key:
            return True
        token = self.request_jwt(req)
        if token == "":
            return False
        return verify_file_id_token(key, token, expected_claim(vid, fid))

    # -- dispatch ------------------------------------------------------------------------------

    async def handle(self, exch: Exchange) -> None:
        raw = exch.request
        if raw.method == b"GET" or raw.method == b"HEAD":
            fast = fast_read(self, raw)
            if fast is not None:
                data, rest, inflight = fast
                self.download.add(inflight)
                exch.started = True
                exch.status = 200
                exch.served_fast = True
                try:
                    await exch.send(data)
                    if rest:
                        await exch.send(rest)
                finally:
                    self.download.release(inflight)
                return
        elif raw.method == b"POST" and await fast_write(self, exch):
            exch.served_fast = True
            return
        try:
            req = GoRequest(exch.request, exch.client_host)
        except BadRequestURI:
            exch.close_after = True
            exch.started = True
            exch.status = 400
            await exch.send(go_bad_request(400))
            return
        scope = Scope()
        try:
            resp = await self._route(exch, req, scope)
            if resp is not None:
                await self._send(exch, resp, scope)
        except DropConnection:
            exch.close_after = True
        except ContentError:
            exch.close_after = True
        finally:
            if scope._closers:
                with trio.CancelScope(shield=True):
                    await scope.finish()
            else:
                scope.finish_sync()

    async def _send(self, exch: Exchange, resp: GoResponse, scope: Scope) -> None:
        await self._settle_body(exch, scope)
        if isinstance(resp.stream, FileBody):
            await self._send_file(exch, resp, resp.stream)
            return
        expected = resp.stream_length
        if resp.stream is not None and expected is not None:
            resp.stream = _counting(resp.stream, expected, exch)
        await send_go_response(exch, resp, sniff=detect_content_type)

    async def _send_file(self, exch: Exchange, resp: GoResponse, body: FileBody) -> None:
        req = exch.request
        keep = req.keep_alive and not exch.close_after
        wire = serialize_head(resp, method=req.method, keep_alive=keep, http10=req.http_version == b"1.0",
                              sniff=detect_content_type)
        exch.started = True
        exch.status = resp.status
        if not keep:
            exch.close_after = True
        await exch.send(wire.head)
        if wire.send_body and body.count > 0:
            if await exch.send_file(body.fd, body.offset, body.count, cached=body.cached) != body.count:
                exch.close_after = True  # .dat cut short: the client must not wait for more

    async def _settle_body(self, exch: Exchange, scope: Scope) -> None:
        """Go's handling of a request body the handler left unread (weedpy.http1.settle_body);
        a body that ended early at the peer's EOF counts as read (Go's body saw its EOF)."""
        if scope.body_ended:
            exch.settled = True
            return
        await settle_body(exch)

    def _source(self, exch: Exchange, scope: Scope) -> Source:
        sent = False

        async def source() -> bytes:
            nonlocal sent
            if not sent and exch.request.expect_continue and not exch.started:
                sent = True
                await exch.send(CONTINUE_100)
            try:
                return await exch.receive_body()
            except ProtocolError as exc:
                text = _chunk_error(str(exc))
                if text == "unexpected EOF" and not exch.request.chunked:
                    scope.body_ended = True  # Go saw EOF on a Content-Length body: no Connection: close
                raise GoIOError(text) from None
            except trio.TooSlowError:
                raise GoIOError("i/o timeout") from None

        return source

    async def _route(self, exch: Exchange, req: GoRequest, scope: Scope) -> GoResponse | None:
        escaped = req.url.escaped_path
        clean = _clean_path(escaped)
        if clean != escaped and req.method != "CONNECT":
            return _mux_redirect(req, path_escape(clean))
        path = req.path
        if path == "/favicon.ico" or path.startswith("/seaweedfsstatic/") or (
            exch.port_kind == "public" and path == "/seaweedfsstatic"
        ):
            return await self.static_files.handle(req)
        if exch.port_kind == "admin":
            if path in ("/status", "/healthz", "/readyz") or (path == "/ui/index.html" and self.ui_enabled):
                h = GoHeader()
                h.set("X-Amz-Request-Id", handler_header(self.server, req).get("X-Amz-Request-Id") or "")
                h.set("Server", self.server)
                if path == "/status":
                    return await status(self, req, h)
                if path == "/ui/index.html":
                    return await ui_page(self, h)
                return healthz(self, h)
            return await self._private(exch, req, scope)
        return await self._public(exch, req, scope)

    async def _private(self, exch: Exchange, req: GoRequest, scope: Scope) -> GoResponse | None:
        h = handler_header(self.server, req)
        m = req.method
        if m in ("GET", "HEAD"):
            return await self._get(exch, req, h, scope)
        if m == "DELETE":
            if self.guard.restricts and not self.guard.allows(req.remote_host):
                return empty(h, 401)
            return await delete(self, req, h)
        if m in ("PUT", "POST"):
            return await self._upload(exch, req, h, scope)
        if m == "OPTIONS":
            h.add("Access-Control-Allow-Methods", "PUT, POST, GET, DELETE, OPTIONS")
            h.add("Access-Control-Allow-Headers", "*")
            return GoResponse(200, h)
        return json_error(h, req, 400, f"unsupported method {m}")

    async def _public(self, exch: Exchange, req: GoRequest, scope: Scope) -> GoResponse | None:
        h = handler_header(self.server, req)
        m = req.method
        if m in ("GET", "HEAD"):
            return await self._get(exch, req, h, scope)
        if m == "OPTIONS":
            h.add("Access-Control-Allow-Methods", "GET, OPTIONS")
            h.add("Access-Control-Allow-Headers", "*")
        return GoResponse(200, h)

    async def _upload(self, exch: Exchange, req: GoRequest, h: GoHeader, scope: Scope) -> GoResponse:
        cl = 0
        v = req.header("Content-Length")
        if v:
            try:
                cl = int(v) if v.lstrip("+-").isdigit() else 0
            except ValueError:
                cl = 0
        lim = self.upload
        if lim.limit != 0 and req.query.get("type") != "replicate" and lim.inflight > lim.limit:
            self.ctx.metrics.handler("uploadLimitCondition")
            outcome, seen = await lim.wait()
            if outcome == WaitOutcome.TIMEOUT:
                return json_error(h, req, 429, f"reject because inflight upload data {seen} > {lim.limit}, and wait timeout")
        lim.add(cl)
        scope.on_done(lambda: lim.release(cl))
        if self.guard.restricts and not self.guard.allows(req.remote_host):
            return empty(h, 401)
        return await post(self, req, h, self._source(exch, scope))

    async def _get(self, exch: Exchange, req: GoRequest, h: GoHeader, scope: Scope) -> GoResponse | None:
        lim = self.download
        if lim.over:
            self.ctx.metrics.handler("downloadLimitCondition")
            if req.query.get("proxied") != "true":
                try:
                    vid = new_volume_id(parse_url_path(req.path).vid)
                except NumError:
                    return empty(h, 400)
                except ValueError:
                    raise DropConnection from None
                vol = await storage_call(self.ctx.store.find_volume, vid)
                if vol is not None and vol.replica_placement.has_replication:
                    up = parse_url_path(req.path)
                    return await self.proxy_or_redirect(req, h, scope, up.vid, up.fid)
            outcome, seen = await lim.wait()
            if outcome == WaitOutcome.TIMEOUT:
                return json_error(h, req, 429, f"request {req.path} because inflight download data {seen} > {lim.limit}, and wait timeout")
        return await get_or_head(self, req, h, scope)

    # -- other servers -------------------------------------------------------------------------

    async def proxy_or_redirect(self, req: GoRequest, h: GoHeader, scope: Scope, vid_text: str, fid: str) -> GoResponse:
        try:
            vid = new_volume_id(vid_text)
        except NumError:
            return empty(h, 400)
        metrics = self.ctx.metrics
        try:
            locations = await self.ctx.master.lookup_volume(vid)
        except Exception:
            metrics.not_found(invalid=True)
            return empty(h, 404)
        target = pick_target([loc.url for loc in locations], self.ctx.self_url)
        if target is None:
            metrics.handler("emptyReadProxyLocaction")  # sic: Go's label
            metrics.not_found(invalid=True)
            return empty(h, 404)
        if self.read_mode == "proxy":
            metrics.handler("readProxyRequest")
            resp, cm = await proxy_response(h, req, self.ctx.http_pool, target)
            if cm is not None:
                scope.close_later(cm)
            elif resp.status == 500:
                metrics.handler("failedReadProxyRequest")
                metrics.internal_error()
            return resp
        metrics.handler("readRedirectRequest")
        return redirect_response(h, req, target, vid_text, fid, self.ctx.tls.http_scheme)

    async def chunk_url(self, fid: str) -> str:
        """LookupFileId: a random location of the chunk's volume."""
        parts = fid.split(",")
        if len(parts) != 2:
            raise ContentError("Invalid fileId " + fid)
        try:
            vid = int(parts[0])
            locations = await self.ctx.master.lookup_volume(vid)
        except (ValueError, LookupError) as exc:
            raise ContentError(str(exc)) from None
        if not locations:
            raise ContentError("File Not Found")
        return f"{self.ctx.tls.http_scheme}://" + locations[random.randrange(len(locations))].url + "/" + fid

    async def chunk_get(self, url: str, offset: int):
        host, _, path = url.partition("://")[2].partition("/")
        headers = [("User-Agent", "Go-http-client/1.1")]
        if offset > 0:
            headers.append(("Range", f"bytes={offset}-"))
        else:
            headers.append(("Accept-Encoding", "gzip"))
        cm = open_request(self.ctx.http_pool, host, "GET", "/" + path, headers)
        try:
            resp = await cm.__aenter__()
        except UpstreamError as exc:
            raise ContentError(f"Get \"{url}\": {exc}") from None
        gunzip = offset == 0 and (resp.header(b"content-encoding") or b"").lower() == b"gzip"

        async def body():
            try:
                d = zlib.decompressobj(16 + 15) if gunzip else None
                async for piece in resp.body():
                    yield d.decompress(piece) if d else piece
                if d:
                    tail = d.flush()
                    if tail:
                        yield tail
            except (UpstreamError, Exception) as exc:
                raise ContentError(str(exc)) from None
            finally:
                await cm.__aexit__(None, None, None)

        return resp.status, body()

    async def delete_chunks(self, fids: list[str]) -> str | None:
        """ChunkManifest.DeleteChunks: skip-cookie batch deletes per server; the first failure as
        `chunk delete <fid>: <error>` (Go's result order: bad fids, lookup errors, per server)."""
        failures: list[tuple[str, str]] = []
        by_vid: dict[str, list[str]] = {}
        for fid in fids:
            comma = fid.find(",")
            if comma <= 0:
                failures.append((fid, "Wrong fid format."))
                continue
            by_vid.setdefault(fid[:comma], []).append(fid)
        by_server: dict[str, tuple[int, list[str]]] = {}
        for vid_text, group in by_vid.items():
            try:
                locations = await self.ctx.master.lookup_volume(int(vid_text))
            except ValueError:
                failures += [(f, f"Unknown volume id {vid_text}") for f in group]
                continue
            except LookupError as exc:
                failures += [(f, str(exc)) for f in group]
                continue
            except Exception as exc:
                failures += [(f, f"lookup error: {exc}") for f in group]
                continue
            for loc in locations:
                entry = by_server.setdefault(loc.url, (loc.grpc_port, []))
                entry[1].extend(group)
        for url, (grpc_port, group) in by_server.items():
            if url == self.ctx.self_url:
                failures += await trio.to_thread.run_sync(self._batch_delete_local, group)
            else:
                failures += await _batch_delete_remote(url, grpc_port, group, self.ctx.peer_grpc)
        if failures:
            fid, err = failures[0]
            return f"chunk delete {fid}: {err}"
        return None

    def _batch_delete_local(self, fids: list[str]) -> list[tuple[str, str]]:
        """BatchDelete with SkipCookieCheck on this server's own store."""
        out = []
        store = self.ctx.store
        for fid in fids:
            vid_text, _, key_cookie = fid.partition(",")
            try:
                key, _ = parse_key_cookie(key_cookie)
            except FidError as exc:
                out.append((fid, str(exc)))
                continue
            try:
                vid = new_volume_id(vid_text)
            except NumError:
                vid = 0
            if store.find_volume(vid) is None:
                out.append((fid, f"volume {vid} not found on {self.ctx.self_url}"))
                continue
            try:
                store.delete_needle(vid, key, None)
            except StorageError as exc:
                out.append((fid, str(exc)))
        return out


async def _batch_delete_remote(url: str, grpc_port: int, fids: list[str], options: ChannelOptions) -> list[tuple[str, str]]:
    host = url.rsplit(":", 1)[0]
    port = grpc_port or int(url.rsplit(":", 1)[1]) + 10000
    try:
        async with Channel(host, port, options=options) as ch:
            resp = await ch.unary_unary(
                "/volume_server_pb.VolumeServer/BatchDelete",
                vs.BatchDeleteRequest(file_ids=fids, skip_cookie_check=True), vs.BatchDeleteResponse, timeout=30,
            )
    except (GrpcError, OSError, trio.TooSlowError) as exc:
        return [(f, str(exc)) for f in fids]
    return [(r.file_id, r.error) for r in resp.results if r.error]


async def _counting(stream, expected: int, exch: Exchange):
    """Pass a declared-length body through; a short body must not leave the client waiting."""
    sent = 0
    try:
        async for piece in stream:
            sent += len(piece)
            yield piece
    except ContentError:
        exch.close_after = True
        return
    if sent != expected:
        exch.close_after = True


_CHUNK_ERRORS = {
    "Invalid character in chunk size": "invalid byte in chunk length",
    "Chunk size overflow": "http chunk length too large",
}


def _chunk_error(message: str) -> str:
    """Go's body-read error for what the HTTP parser reported about the request body."""
    if "closed" in message or "EOF" in message:
        return "unexpected EOF"
    if "chunk" in message.lower() or "LF" in message:
        return _CHUNK_ERRORS.get(message, "malformed chunked encoding")
    return "unexpected EOF"


def _mux_redirect(req: GoRequest, clean_escaped: str) -> GoResponse:
    """ServeMux's redirect to the clean path: 307, Location, and for GET a small HTML body."""
    url = clean_escaped + (("?" + req.url.raw_query) if req.url.raw_query else "")
    h = GoHeader()
    h.set("Location", url)
    body = b""
    if req.method in ("GET", "HEAD"):
        h.set("Content-Type", "text/html; charset=utf-8")
    if req.method == "GET":
        body = ('<a href="' + html_escape(url) + '">Temporary Redirect</a>.\n\n').encode("latin-1")
    return GoResponse(307, h, body)
