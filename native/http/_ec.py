"""GET/HEAD and DELETE of needles on EC volumes held by this server (Go's GetOrHeadHandler and
DeleteHandler EC branches). Reads fetch the needle's shard intervals (locally, from peers, or
rebuilt; see `native.ec_net`) and then answer exactly as for a normal volume; there is no
streaming path and no `readDeleted` for EC volumes in Go either."""

from __future__ import annotations

from typing import TYPE_CHECKING

from native.ec_net import delete_ec_needle, read_ec_needle
from native.http._common import empty, json_error, json_response
from native.http._request import GoRequest
from native.storage import NotFound, StorageError
from weedpy.http1 import GoHeader, GoResponse

if TYPE_CHECKING:
    from native.http.app import NativeHttp, Scope

__all__ = ["ec_get_or_head", "ec_delete"]


async def ec_get_or_head(app: "NativeHttp", req: GoRequest, h: GoHeader, scope: "Scope", vid: int, key: int,
                         cookie: int, up) -> GoResponse:
    from native.http._read import respond

    ctx = app.ctx
    ev = ctx.store.ec.find_volume(vid)
    if ev is None:
        return empty(h, 404)
    try:
        _, size = ev.find_needle(key)
    except NotFound:
        return empty(h, 404)
    except (StorageError, OSError):
        return empty(h, 500)
    if size < 0:
        return empty(h, 404)
    app.download.add(size)
    scope.on_done(lambda: app.download.release(size))
    try:
        n = await read_ec_needle(ctx, vid, key)
    except NotFound:
        return empty(h, 404)
    except (StorageError, OSError, ValueError):
        return empty(h, 500)
    return await respond(app, req, h, n, cookie, None, filename=up.filename, ext=up.ext,
                         has_query=req.url.raw_query != "")


async def ec_delete(app: "NativeHttp", req: GoRequest, h: GoHeader, vid: int, key: int, cookie: int) -> GoResponse:
    try:
        count = await delete_ec_needle(app.ctx, vid, key, cookie)
    except (StorageError, OSError, ValueError) as exc:
        return json_error(h, req, 500, f"Deletion Failed: {exc}")
    return json_response(h, req, 202, {"size": count})
