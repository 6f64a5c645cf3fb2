"""The route table a running server serves from, replaced whole while it runs.

`LiveRoutes.table` is the current immutable `RouteTable`. The fronts read it once per request
(an HTTP exchange or a gRPC call), so a request finishes on the table it started with whatever
changes meanwhile, and logs that table's version. A change (`install`, `reload`, `edit`) is
validated first (the table itself, the mode's rules, the targets this server can serve: a
refused table leaves the running one in place and raises `RouteTableError` naming the entry),
then handed to the subscribers (the worker processes switch to it and acknowledge), then
swapped in here in one assignment, before the call returns. So this process shows a version
(`/weedpy/routes`) only once every process serves it. Changes are serialised: one at a time, in
order.

Who changes it: SIGHUP (re-reads `-routes`), the admin API (`RoutesApi`, `/weedpy/routes` on the
admin port: loopback or whitelisted clients only; a worker process forwards it to the leader),
and the auto-rollback monitor (weedpy/cutover.py). See docs/routes.md and docs/cutover.md.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import trio

from weedpy.http1 import Exchange, response_head
from weedpy.logs import get_logger
from weedpy.serve.guard import Guard
from weedpy.serve.routes import (
    ALL_ENDPOINTS,
    Route,
    RouteTable,
    RouteTableError,
    Target,
    load_route_table,
    mode_route_problem,
    parse_route_table,
    request_path,
)

__all__ = ["LiveRoutes", "RoutesApi", "RoutesHttp", "API_PREFIX", "Change", "edit_table", "is_loopback"]

log = get_logger("serve.routes")

API_PREFIX = b"/weedpy/routes"
HISTORY = 50  # changes kept for `weedpy cutover status`
MAX_BODY = 1 << 20


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One table the server served from: when, who made it, what moved."""

    serial: int
    version: str
    at: float
    by: str
    moved: tuple[str, ...] = ()
    note: str = ""

    def to_doc(self) -> dict[str, Any]:
        return {"serial": self.serial, "version": self.version, "at": self.at, "by": self.by,
                "moved": list(self.moved), "note": self.note}


def _moved(old: RouteTable, new: RouteTable) -> tuple[str, ...]:
    """`endpoint: old -> new` for every endpoint whose route changed (the default counts as one), and
    the `[volumes]` rule when it changed."""
    out = []
    if old.default != new.default:
        out.append(f"default: {_describe(old.default)} -> {_describe(new.default)}")
    for name in sorted(set(old.routes) | set(new.routes)):
        a, b = old.lookup(name), new.lookup(name)
        if a != b:
            out.append(f"{name}: {_describe(a)} -> {_describe(b)}")
    if old.volume_rollback != new.volume_rollback:
        rules = ["none" if r is None else json.dumps(r.to_doc(), sort_keys=True)
                 for r in (old.volume_rollback, new.volume_rollback)]
        out.append(f"[volumes] auto_rollback: {rules[0]} -> {rules[1]}")
    return tuple(out)


def _describe(route: Route) -> str:
    s = route.target.value
    if route.native_pct is not None:
        s += f" {route.native_pct:g}%"
    return s


class LiveRoutes:
    """The running table of one process (see the module docstring).

    `mode` is the server's (proxy, native, mixed); `path` the `-routes` file SIGHUP re-reads.
    """

    def __init__(self, table: RouteTable, *, mode: str, path: str | Path | None = None, by: str = "start") -> None:
        self.table = table
        self.mode = mode
        self.path = None if path is None else Path(path)
        self.serial = 1
        self._available: frozenset[Target] | None = None
        self._labels = {table.version}
        self._lock = trio.Lock()
        self._pending: tuple[RouteTable, Change] | None = None  # being installed: the workers switch first
        self._subscribers: list[Callable[[LiveRoutes], Awaitable[None]]] = []
        self.history: collections.deque[Change] = collections.deque(maxlen=HISTORY)
        self.history.append(Change(1, table.version, time.time(), by))
        # What `weedpy cutover status` adds (mixed mode: the differ's evidence, rollbacks).
        self.status_extra: Callable[[], dict[str, Any]] | None = None

    # -- reading ----------------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self.table.version

    def lookup(self, endpoint: str) -> Route:
        return self.table.lookup(endpoint)

    def targets(self) -> frozenset[Target]:
        return self.table.targets()

    def owner_of_writes(self) -> str | None:
        return self.table.owner_of_writes()

    def serves(self, targets: Iterable[Target]) -> None:
        """A front can send requests to these targets only: a table using others is refused."""
        keys = frozenset(targets) | {Target.OFF}
        self._available = keys if self._available is None else self._available & keys

    def subscribe(self, on_change: Callable[[LiveRoutes], Awaitable[None]]) -> None:
        """`on_change(self)` runs for each change before this process switches to it (the workers
        apply `self.message()`, which is the new table by then)."""
        self._subscribers.append(on_change)

    def message(self) -> dict[str, Any]:
        """The table as the control channel carries it to a worker process: the one being
        installed while the workers switch to it (a worker starting meanwhile starts on it)."""
        table, change = self._pending or (self.table, self.history[-1])
        return {"table": table.to_doc(), "serial": change.serial, "at": change.at, "by": change.by}

    def status(self) -> dict[str, Any]:
        last = self.history[-1]
        doc: dict[str, Any] = {
            "version": self.table.version, "serial": self.serial, "mode": self.mode,
            "changed_at": last.at, "changed_by": last.by, "file": None if self.path is None else str(self.path),
            "table": self.table.to_doc(), "history": [c.to_doc() for c in reversed(self.history)],
        }
        if self.status_extra is not None:
            doc.update(self.status_extra())
        return doc

    # -- changing ---------------------------------------------------------------------------------

    def problem(self, table: RouteTable) -> str | None:
        """Why this server cannot serve `table` (None: it can)."""
        problem = mode_route_problem(self.mode, table)
        if problem is not None:
            return problem
        if self._available is not None:
            missing = table.targets() - self._available
            if missing:
                names = sorted(
                    e for e in ALL_ENDPOINTS
                    if table.lookup(e).target in missing
                    or (table.lookup(e).native_pct is not None and table.lookup(e).go_side in missing)
                )
                what = ", ".join(sorted(t.value for t in missing))
                return (f"this server cannot serve target(s) {what} (dual-run targets need a dual-run table and "
                        f"-dir.native at start): {', '.join(names[:6]) or 'default'}{' ...' if len(names) > 6 else ''}")
        return None

    @contextlib.contextmanager
    def refusing(self, by: str, version: str | None = None) -> Iterator[None]:
        """A RouteTableError raised inside is logged (`route table refused`, naming the entry) and
        raised on; the running table stays."""
        try:
            yield
        except RouteTableError as exc:
            log.error("route table refused", by=by, version=version, error=str(exc), running=self.table.version)
            raise

    async def install(self, table: RouteTable, by: str, note: str = "") -> RouteTable:
        """Validate `table`, switch to it, tell the subscribers; RouteTableError leaves the running one."""
        async with self._lock:
            problem = self.problem(table)
            if problem is not None:
                with self.refusing(by, table.version):
                    raise RouteTableError(problem)
            serial = self.serial + 1
            if table.version in self._labels:  # the same label again (an unchanged `version` line)
                table = dataclasses.replace(table, version=f"{table.version}#{serial}")
            old = self.table
            moved = _moved(old, table)
            change = Change(serial, table.version, time.time(), by, moved, note)
            self._pending = (table, change)
            try:
                for on_change in self._subscribers:  # the workers first (each acknowledges or is replaced)
                    await on_change(self)
            finally:
                self._pending = None
                self.table = table  # the switch: every request of this process from now on reads this one
                self.serial = serial
                self._labels.add(table.version)
                self.history.append(change)
            log.info("route table changed", version=table.version, previous=old.version, by=by, moved=list(moved),
                     note=note or None)
            return table

    async def reload(self, by: str = "sighup") -> RouteTable:
        """Read the `-routes` file again and install it (SIGHUP, POST /weedpy/routes/reload)."""
        with self.refusing(by):
            if self.path is None:
                raise RouteTableError("no -routes file to read again: this server started without one")
            table = await trio.to_thread.run_sync(load_route_table, self.path)
        return await self.install(table, by)

    async def edit(self, patch: Mapping[str, Any], by: str, note: str = "") -> RouteTable:
        """Change some entries of the running table (see `edit_table`) and install the result."""
        with self.refusing(by):
            table = edit_table(self.table, patch)
        return await self.install(table, by, note)

    def adopt(self, msg: Mapping[str, Any]) -> None:
        """A worker process: take the leader's table as it is (the leader validated it)."""
        table = parse_route_table(msg["table"], version=str(msg["table"].get("version", "leader")))
        self.table = table
        self.serial = int(msg.get("serial", self.serial))
        self.history.append(Change(self.serial, table.version, float(msg.get("at", time.time())),
                                   str(msg.get("by", "leader"))))


def edit_table(table: RouteTable, patch: Mapping[str, Any]) -> RouteTable:
    """`table` with `patch` applied: `{"routes": {ENDPOINT: TARGET | {...} | null}, "default": ...,
    "volumes": {...} | null, "version": ...}`; an entry of null removes the endpoint's own route (it
    follows the default), `"volumes": null` the `[volumes]` section.
    The version is the patch's, else the running one (made unique when installed)."""
    unknown = set(patch) - {"version", "default", "routes", "volumes"}
    if unknown:
        raise RouteTableError(f"unknown key(s) in the edit: {', '.join(sorted(unknown))}")
    doc = table.to_doc()
    if "default" in patch:
        doc["default"] = patch["default"]
    if "volumes" in patch:  # replaced whole; null removes it
        if patch["volumes"] is None:
            doc.pop("volumes", None)
        else:
            doc["volumes"] = patch["volumes"]
    changes = patch.get("routes", {})
    if not isinstance(changes, Mapping):
        raise RouteTableError("routes in an edit must be a table of endpoint = target (null removes one)")
    for name, value in changes.items():
        if value is None:
            doc["routes"].pop(name, None)
        else:
            doc["routes"][name] = value
    doc["version"] = str(patch.get("version", table.version.split("#", 1)[0]))
    return parse_route_table(doc, version=doc["version"])


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_body(body: bytes) -> dict[str, Any]:
    """A table or an edit, as JSON or TOML."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        raise RouteTableError("the request has no body (a route table or an edit, as TOML or JSON)")
    import tomllib  # only for a route change (start-up time)

    try:
        doc = json.loads(text) if text.startswith("{") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise RouteTableError(f"the body is neither JSON nor TOML: {exc}") from None
    if not isinstance(doc, dict):
        raise RouteTableError("the body must be a table (TOML) or an object (JSON)")
    return doc


class RoutesApi:
    """The admin API, sans-IO: `await answer(method, path, body, client)` -> (status, JSON doc).

        GET   /weedpy/routes          the running table, its version, history (and evidence in mixed mode)
        PUT   /weedpy/routes          replace the table (body: a route table, TOML or JSON)
        PATCH /weedpy/routes          edit entries (body: {"routes": {ENDPOINT: TARGET | {...} | null}, ...})
        POST  /weedpy/routes/reload   read the -routes file again (as SIGHUP does)

    Only loopback clients and, when a whitelist is set (-whiteList, guard.white_list), the
    clients it allows are answered (403 otherwise). A refused change answers 400 with the reason.
    """

    def __init__(self, live: LiveRoutes, guard: Guard) -> None:
        self.live = live
        self.guard = guard

    def allows(self, client: str) -> bool:
        return is_loopback(client) or (self.guard.restricts and self.guard.allows(client))

    async def answer(self, method: str, path: str, body: bytes, client: str) -> tuple[int, dict[str, Any]]:
        if not self.allows(client):
            return 403, {"error": "the route API answers loopback and whitelisted clients only"}
        rest = path[len(API_PREFIX):].strip("/") if path.startswith(API_PREFIX.decode()) else path
        by = f"api {client}"
        try:
            if rest == "" and method in ("GET", "HEAD"):
                return 200, self.live.status()
            if rest == "" and method == "PUT":
                with self.live.refusing(by):
                    doc = _parse_body(body)
                    table = parse_route_table(doc, version=str(doc.get("version", "api")))
                await self.live.install(table, by)
            elif rest == "" and method == "PATCH":
                with self.live.refusing(by):
                    patch = _parse_body(body)
                await self.live.edit(patch, by)
            elif rest == "reload" and method == "POST":
                await self.live.reload(by)
            elif rest in ("", "reload"):
                return 405, {"error": f"{method} is not allowed here (GET, PUT, PATCH /weedpy/routes; "
                                      "POST /weedpy/routes/reload)"}
            else:
                return 404, {"error": "not found"}
        except RouteTableError as exc:
            return 400, {"error": str(exc), "version": self.live.version}
        return 200, {"version": self.live.version, "serial": self.live.serial}


Answer = Callable[[str, str, bytes, str], Awaitable[tuple[int, dict[str, Any]]]]


class RoutesHttp:
    """`/weedpy/routes*` on the admin port, answered by `answer` (a `RoutesApi`'s, or in a worker
    process the leader's, over the control channel); every other request goes to `inner`.
    `prefix` serves another admin API the same way (`/weedpy/volumes`, with `keep_query` the
    path given to `answer` keeps its query)."""

    def __init__(self, answer: Answer, inner: Callable[[Exchange], Awaitable[None]], *,
                 prefix: bytes = API_PREFIX, keep_query: bool = False) -> None:
        self._answer = answer
        self._inner = inner
        self._prefix = prefix
        self._keep_query = keep_query

    def handle(self, exch: Exchange) -> Awaitable[None]:
        """Not a coroutine itself: every other request is handed on without an extra frame."""
        target = exch.request.target
        prefix = self._prefix
        if exch.port_kind != "admin" or not target.startswith(prefix):
            return self._inner(exch)
        path = request_path(target)
        if path != prefix and not path.startswith(prefix + b"/"):
            return self._inner(exch)
        return self._serve(exch, target if self._keep_query else path)

    async def _serve(self, exch: Exchange, path: bytes) -> None:
        req = exch.request
        body = bytearray()
        while chunk := await exch.receive_body():
            body += chunk
            if len(body) > MAX_BODY:
                status, doc = 413, {"error": f"the body is over {MAX_BODY} bytes"}
                break
        else:
            status, doc = await self._answer(req.method.decode("latin-1"), path.decode("latin-1"), bytes(body),
                                             exch.client_host)
        log.info("routes api" if self._prefix == API_PREFIX else "admin api", method=req.method.decode("latin-1"),
                 path=path.decode("latin-1"), status=status,
                 client=exch.client_host)
        out = json.dumps(doc, ensure_ascii=False).encode()
        exch.started = True
        exch.status = status
        headers = [(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(out))]
        if not req.keep_alive or status == 413:
            headers.append((b"Connection", b"close"))
            exch.close_after = True
        await exch.send(response_head(status, None, headers) + (b"" if req.method == b"HEAD" else out))
