"""Evidence-gated cutover in mixed mode: the differ's and the fronts' counts per endpoint over a
window, `auto_rollback` rules that move a route back to Go, and what `weedpy cutover status` shows.

`Cutover(live, evidence)` sits above the shared layer and the differ (like weedpy/mixed.py): the
fronts count each side's answers and server errors into `evidence`, the differ's engine calls
`judged(endpoint, kind)` for every compared sample (`real` and `noise` as the differ classifies
the sample's fields at that moment, docs/differ.md), and `run()` checks every route that has an
`auto_rollback` rule once a second. A route served (wholly or in part) by native whose window
breaks its rule is moved to its Go side (`native` -> `go`, `native+verify` -> `shadow`, any
`native_pct` dropped) through the same validated, atomic change as SIGHUP and the admin API
(`by = "auto_rollback"`), logged (`route rolled back`), listed under `rollbacks` in
`/weedpy/routes` and in the differ's report. The route keeps its rule, so the status shows why.

The differ's samples are counted per volume too (`volumes_named`); the per-volume rule and what
it shows are weedpy/volume_rollback.py's. A test-only fault switch (`TEST_FAULT_ENV`, see
`fault_switch`) makes native answer one endpoint, or the reads of one volume, wrongly, so the
tests can watch a rollback happen; docs/cutover.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from weedpy.http1 import Exchange
from weedpy.logs import get_logger
from weedpy.metrics import COUNTER, new_metric
from weedpy.serve.evidence import Evidence, volume_key
from weedpy.serve.live_routes import LiveRoutes, is_loopback
from weedpy.serve.routes import ALL_ENDPOINTS, Route, RouteTable, RouteTableError, Target, request_path, http_endpoint
from weedpy.serve.volume_owners import OWNED_HTTP, request_volumes, volume_of_path

__all__ = ["Cutover", "DEFAULT_WINDOW_S", "CHECK_S", "TEST_FAULT_ENV", "fault_switch", "FaultyHttp", "status_rows",
           "volumes_named", "volume_rows"]

if TYPE_CHECKING:
    from prometheus_client import Metric

log = get_logger("cutover")

DEFAULT_WINDOW_S = 60.0  # the window of an endpoint without a rule, in the status
CHECK_S = 1.0
TEST_FAULT_ENV = "WEEDPY_TEST_ONLY_FAULT"


def _serves_native(route: Route) -> bool:
    return route.target in (Target.NATIVE, Target.NATIVE_VERIFY) and route.native_pct != 0.0


def _pct(part: int, whole: int) -> float | None:
    return round(part * 100.0 / whole, 3) if whole else None


class Cutover:
    def __init__(self, live: LiveRoutes, evidence: Evidence) -> None:
        self.live = live
        self.evidence = evidence
        self.rollbacks: list[dict[str, Any]] = []
        live.status_extra = self.status

    # -- what the differ tells -----------------------------------------------------------------

    def judged(self, endpoint: str, kind: str, request: object = None) -> None:
        """One compared sample: `match`, `ignored`, `real` (a difference the noise does not
        explain) or `noise`; counted for the endpoint and for each volume `request` names."""
        ev = self.evidence
        for key in (endpoint, *(volume_key(v) for v in volumes_named(endpoint, request))):
            ev.add(key, "samples")
            if kind in ("real", "noise"):
                ev.add(key, kind)

    # -- the rule ------------------------------------------------------------------------------

    def breach(self, endpoint: str, route: Route) -> str | None:
        """Why `route` must go back to Go now (None: it may stay)."""
        rule = route.auto_rollback
        if rule is None or not _serves_native(route):
            return None
        w = self.evidence.window(endpoint, rule.window_s)
        return rule.broken_by(w)

    async def check(self) -> list[str]:
        """Roll back every route whose rule is broken; the endpoints moved."""
        table = self.live.table
        moved = []
        for endpoint, route in table.routes.items():
            reason = self.breach(endpoint, route)
            if reason is not None and await self._roll_back(table, endpoint, route, reason):
                moved.append(endpoint)
        return moved

    async def _roll_back(self, seen: RouteTable, endpoint: str, route: Route, reason: str) -> bool:
        if self.live.table is not seen and self.live.lookup(endpoint) != route:
            return False  # someone changed it meanwhile: judge the new route next time
        back = dataclasses.replace(route, target=route.go_side, native_pct=None)
        try:
            table = await self.live.edit({"routes": {endpoint: back.to_doc()}}, "auto_rollback", reason)
        except RouteTableError as exc:  # cannot happen for a table that served (logged by LiveRoutes)
            log.error("rollback refused", route=endpoint, reason=reason, error=str(exc))
            return False
        record = {"route": endpoint, "from": route.target.value, "native_pct": route.native_pct,
                  "to": back.target.value, "reason": reason, "at": time.time(), "version": table.version}
        self.rollbacks.append(record)
        log.warning("route rolled back", **record)
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(CHECK_S)
            await self.check()

    def metrics(self) -> list[Metric]:
        """`weedpy_route_rollbacks_total{route, from, to}` for the gateway's metrics port."""
        counts: dict[tuple[str, str, str], int] = {}
        for rb in self.rollbacks:
            key = (rb["route"], rb["from"], rb["to"])
            counts[key] = counts.get(key, 0) + 1
        return [new_metric("weedpy_route_rollbacks_total", "Routes moved back to Go by their auto_rollback rule.",
                           COUNTER, [({"route": r, "from": f, "to": t}, n) for (r, f, t), n in sorted(counts.items())])]

    # -- what `weedpy cutover status` shows ----------------------------------------------------

    def status(self) -> dict[str, Any]:
        table = self.live.table
        names = sorted(set(table.routes) | (set(self.evidence.endpoints()) & ALL_ENDPOINTS))
        last: dict[str, tuple[float, str]] = {}
        for change in self.live.history:  # oldest first: the last change of each endpoint wins
            for line in change.moved:
                last[line.split(":", 1)[0]] = (change.at, change.by)
        start = self.live.history[0]
        rows = []
        for name in names:
            route = table.lookup(name)
            window = route.auto_rollback.window_s if route.auto_rollback else DEFAULT_WINDOW_S
            w = self.evidence.window(name, window)
            at, by = last.get(name, (start.at, start.by))
            rows.append({
                "route": name, "target": route.target.value,
                "native_pct": route.native_pct if route.native_pct is not None else (
                    100.0 if route.target.serving_side == "native" else 0.0),
                "window_s": window, "samples": w["samples"], "real": w["real"], "noise": w["noise"],
                "real_pct": _pct(w["real"], w["samples"]),
                "requests_native": w["requests.native"], "5xx_native": w["5xx.native"],
                "requests_go": w["requests.go"], "5xx_go": w["5xx.go"],
                "auto_rollback": route.auto_rollback.to_doc() if route.auto_rollback else None,
                "rolled_back": any(r["route"] == name for r in self.rollbacks),
                "last_change_at": at, "last_change_by": by,
            })
        return {"evidence": rows, "rollbacks": list(self.rollbacks), "rollbacks_total": len(self.rollbacks)}


def volumes_named(endpoint: str, request: object) -> list[int]:
    """The volumes a compared request names (the differ's record of an HTTP request or an rpc):
    a file id's, or those of an rpc's first message."""
    target = getattr(request, "target", None)
    if isinstance(target, bytes):
        vid = volume_of_path(request_path(target)) if endpoint in OWNED_HTTP else None
        return [] if vid is None else [vid]
    messages = getattr(request, "messages", None)
    if not messages:
        return []
    return sorted(set(request_volumes(endpoint, messages[0]) or ()))


def status_rows(doc: dict[str, Any]) -> list[list[str]]:
    """`weedpy cutover status` as table rows (header first) from the `/weedpy/routes` document."""
    rows = [["ROUTE", "TARGET", "NATIVE%", "WINDOW", "SAMPLES", "REAL", "NOISE", "5XX(N)", "LAST CHANGE", "BY"]]
    evidence = doc.get("evidence")
    if evidence is None:  # not mixed mode: the table only
        table = doc["table"]
        for name, route in sorted(table["routes"].items()):
            rows.append([name, route["target"], str(route.get("native_pct", "")), "", "", "", "", "", "", ""])
        return rows
    for r in evidence:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["last_change_at"]))
        target = r["target"] + (" (rolled back)" if r["rolled_back"] else "")
        rows.append([r["route"], target, f"{r['native_pct']:g}", f"{r['window_s']:g}s", str(r["samples"]),
                     str(r["real"]), str(r["noise"]), f"{r['5xx_native']}/{r['requests_native']}", when,
                     r["last_change_by"]])
    return rows


def volume_rows(doc: dict[str, Any]) -> list[list[str]]:
    """`weedpy cutover status`'s per-volume table (header first) from the `volumes` document."""
    rows = [["VOLUME", "OWNER", "WINDOW", "REQUESTS", "5XX(N)", "5XX(G)", "SAMPLES", "REAL", "NOISE"]]
    for r in doc.get("evidence", ()):
        owner = (r["owner"] or "-") + (" (rolled back)" if r["rolled_back"] and r["owner"] == "go" else "")
        rows.append([str(r["volume"]), owner, f"{r['window_s']:g}s", str(r["requests"]),
                     f"{r['5xx_native']}/{r['requests_native']}", f"{r['5xx_go']}/{r['requests_go']}",
                     str(r["samples"]), str(r["real"]), str(r["noise"])])
    return rows


# -- the test-only fault switch ----------------------------------------------------------------


def fault_switch(bind_ip: str, environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(kind, what) when `WEEDPY_TEST_ONLY_FAULT=KIND:ENDPOINT` or `KIND:volume:VID` is set, KIND
    `differ` (native adds a header Go does not send) or `5xx` (native answers 500), for one HTTP
    endpoint or for the reads (`admin.read`, `public.read`) of one volume. For tests only: honoured
    only by a server bound to a loopback address; any other server refuses to start with it set
    (ValueError), so it cannot reach production by accident."""
    raw = (environ if environ is not None else os.environ).get(TEST_FAULT_ENV)
    if not raw:
        return None
    kind, _, what = raw.partition(":")
    volume = what.startswith(VOLUME_FAULT) and what[len(VOLUME_FAULT):].isdigit()
    if kind not in ("differ", "5xx") or not (volume or (what in ALL_ENDPOINTS and not what.startswith("/"))):
        raise ValueError(f"{TEST_FAULT_ENV}={raw!r}: expected differ:ENDPOINT or 5xx:ENDPOINT (an HTTP endpoint), "
                         "or differ:volume:VID or 5xx:volume:VID")
    if not is_loopback(bind_ip):
        raise ValueError(f"{TEST_FAULT_ENV} is set: it makes native answer wrongly on purpose and is for tests "
                         f"only; a server bound to {bind_ip or 'every address'} refuses it")
    return kind, what


VOLUME_FAULT = "volume:"
_VOLUME_READS = frozenset({"admin.read", "public.read"})


class FaultyHttp:
    """Native's HTTP app (anything with `.handle`) with the test fault applied to one endpoint, or
    to the reads of one volume (`what` = `volume:VID`)."""

    def __init__(self, app: Any, kind: str, what: str) -> None:
        self._inner_app = app
        self._inner: Callable[[Exchange], Awaitable[None]] = app.handle
        self._kind = kind
        self._endpoint = what
        self._vid = int(what[len(VOLUME_FAULT):]) if what.startswith(VOLUME_FAULT) else None

    def _applies(self, exch: Exchange) -> bool:
        req = exch.request
        path = request_path(req.target)
        endpoint = http_endpoint(exch.port_kind, req.method, path)
        if self._vid is None:
            return endpoint == self._endpoint
        return endpoint in _VOLUME_READS and volume_of_path(path) == self._vid

    async def handle(self, exch: Exchange) -> None:
        if not self._applies(exch):
            await self._inner(exch)
            return
        if self._kind == "5xx":
            body = b'{"error":"test-only fault"}'
            await exch.send(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            exch.started = True
            exch.status = 500
            return
        await self._inner(_MarkedExchange(exch))  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:  # the rest of native's HTTP app, as it is
        return getattr(self._inner_app, name)


class _MarkedExchange:
    """An exchange whose response head carries one header more (`differ` fault)."""

    __slots__ = ("_x", "_marked")

    def __init__(self, exch: Exchange) -> None:
        object.__setattr__(self, "_x", exch)
        object.__setattr__(self, "_marked", False)

    def __getattr__(self, name: str) -> object:
        return getattr(self._x, name)

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._x, name, value)

    async def send(self, data: bytes) -> None:
        if not self._marked and data.startswith(b"HTTP/"):
            object.__setattr__(self, "_marked", True)
            end = data.find(b"\r\n")
            data = data[:end + 2] + b"X-Weedpy-Test-Fault: differ\r\n" + data[end + 2:]
        await self._x.send(data)


# -- `weedpy cutover status | move | settle` ------------------------------------------------------


def _ask(base: str, method: str, path: str) -> tuple[int, dict[str, Any] | str]:
    """(status, JSON document or error text) of the server's admin API; status 0 when unreachable."""
    req = urllib.request.Request(f"{base}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text
    except (OSError, ValueError) as exc:
        return 0, str(exc)


def _print_status(doc: dict[str, Any]) -> None:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doc["changed_at"]))
    print(f"route table {doc['version']} (serial {doc['serial']}, mode {doc['mode']}), "
          f"changed {when} by {doc['changed_by']}; default {doc['table']['default']['target']}")
    rows = status_rows(doc)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for rb in doc.get("rollbacks", []):
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rb["at"]))
        print(f"rolled back {at}: {rb['route']} {rb['from']} -> {rb['to']}: {rb['reason']}")
    volumes = doc.get("volumes")
    if volumes is None:
        return
    if "native" in volumes:  # volume owners (mixed mode without dual-run routes)
        print(f"volumes owned by native: {', '.join(map(str, volumes['native'])) or 'none'}"
              f" (every other volume: go; new volumes: {volumes.get('new_volumes', 'go')})")
    rule = volumes.get("auto_rollback")
    print("volume evidence" + (f", [volumes] auto_rollback {json.dumps(rule, sort_keys=True)}" if rule else
                               ", no [volumes] auto_rollback rule"))
    rows = volume_rows(volumes)
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for mv in volumes.get("moves", [])[:10]:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mv["at"]))
        print(f"moved {at}: volume {mv['vid']} {mv['from']} -> {mv['to']} by {mv['by']}: {mv['outcome']}"
              + (f" ({mv['error']})" if mv.get("error") else ""))
    for rb in volumes.get("rollbacks", []):
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rb["at"]))
        print(f"volume rolled back {at}: volume {rb['volume']} {rb['from']} -> {rb['to']}: {rb['reason']}")


def _settle(args: argparse.Namespace) -> int:
    from native.storage.ownership import Layout, OwnershipError, settle  # files only; loads the storage package

    if not args.dir:
        print("weedpy cutover settle: -dir is required (the server's -dir, comma separated)")
        return 2
    layout = Layout.of([d for d in args.dir.split(",") if d], args.idx or None)
    try:
        resolved, moved = settle(layout)
    except (OSError, OwnershipError) as exc:
        print(f"weedpy cutover settle: {exc}")
        return 1
    if resolved is not None:
        print(f"interrupted move of volume {resolved['vid']} ({resolved['from']} -> {resolved['to']}, "
              f"step {resolved.get('step')}): {resolved['outcome']}")
    print(f"moved back to -dir: {', '.join(map(str, moved)) or 'nothing'}")
    return 0


def main(argv: list[str]) -> int:
    """`weedpy cutover status [-server=HOST:PORT] [-json]`: the running route table, the evidence
    per endpoint and the volumes native owns, from the server's `/weedpy/routes`;
    `weedpy cutover move VOLUME -to=native|go [-server=...]`: move one volume (mixed mode);
    `weedpy cutover settle -dir=D[,D...] [-dir.idx=I]`: with the server stopped, put every volume
    back in -dir (what every mode but mixed does at start). The admin API answers loopback and
    whitelisted addresses. Exit 0, 1 when the server cannot be asked or refuses, 2 on usage errors."""
    parser = argparse.ArgumentParser(prog="weedpy cutover", description="evidence-gated cutover (docs/cutover.md)")
    parser.add_argument("command", choices=["status", "move", "settle"])
    parser.add_argument("volume", nargs="?", type=int, help="move: the volume id")
    parser.add_argument("-to", "--to", choices=["native", "go"], help="move: the new owner")
    parser.add_argument("-server", "--server", default="127.0.0.1:8080", help="the volume server's admin HOST:PORT")
    parser.add_argument("-json", "--json", action="store_true", help="print the whole document as JSON (for CI)")
    parser.add_argument("-dir", "--dir", default="", help="settle: the server's -dir folders, comma separated")
    parser.add_argument("-dir.idx", "--dir.idx", dest="idx", default="", help="settle: the server's -dir.idx")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    if args.command == "settle":
        return _settle(args)
    base = args.server if "://" in args.server else f"http://{args.server}"
    if args.command == "move":
        if args.volume is None or args.to is None:
            print("weedpy cutover move: needs VOLUME and -to=native|go")
            return 2
        code, doc = _ask(base, "POST", f"/weedpy/volumes/{args.volume}/move?to={args.to}")
        if args.json and isinstance(doc, dict):
            print(json.dumps(doc, indent=2, sort_keys=True))
        elif code == 200 and isinstance(doc, dict):
            print(f"volume {args.volume}: {doc['from']} -> {doc['to']} ({doc['outcome']}, held {doc['held_ms']:g} ms)")
        else:
            print(f"weedpy cutover move: {base} answered {code or 'nothing'}: "
                  f"{doc.get('error', doc) if isinstance(doc, dict) else doc}")
        return 0 if code == 200 else 1
    code, doc = _ask(base, "GET", "/weedpy/routes")
    if code != 200 or not isinstance(doc, dict):
        print(f"weedpy cutover: {'cannot ask' if not code else 'answer from'} {base}: {doc}")
        return 1
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    _print_status(doc)
    return 0
