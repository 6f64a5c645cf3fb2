"""The route table: which side serves each endpoint, an immutable snapshot loaded from TOML.

Endpoint names are what an operator reads in logs and writes in the table:
HTTP by port and operation (`admin.read`, `admin.write`, `public.read`, `admin.status`, ...) and
gRPC by full method path (`/volume_server_pb.VolumeServer/Ping`). Targets: `go`, `native`,
`shadow` (serve Go, compare native), `native+verify` (serve native, compare Go) and `off` (503 /
UNAVAILABLE). Every endpoint that writes volume files must be owned by one side; a table that
splits them is refused, because two processes must never write the same `.dat`/`.idx`.
A running server swaps snapshots whole (weedpy/serve/live_routes.py). Per route: the differ's
`sample_pct` and ignore rules, `native_pct` (the share of files a read route serves from native,
chosen by a stable hash of the file id: `native_share`) and `auto_rollback` (when the evidence
moves the route back to Go, weedpy/cutover.py); for the table, `[volumes] auto_rollback` (when
the evidence moves a volume native owns back to Go, weedpy/volume_rollback.py). See
docs/routes.md and docs/cutover.md.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "Target",
    "Route",
    "Rollback",
    "NATIVE_PCT_ENDPOINTS",
    "native_share",
    "file_key",
    "RouteTable",
    "RouteTableError",
    "HTTP_ENDPOINTS",
    "GRPC_SERVICE",
    "GRPC_METHODS",
    "MUTATING_ENDPOINTS",
    "ALL_ENDPOINTS",
    "grpc_endpoint",
    "http_endpoint",
    "request_path",
    "load_route_table",
    "parse_route_table",
    "default_route_table",
    "MIXED_GO_ONLY",
    "native_route_table",
    "unsupported_targets",
    "mixed_route_problem",
    "mode_route_problem",
]


class Target(enum.Enum):
    GO = "go"
    NATIVE = "native"
    SHADOW = "shadow"
    NATIVE_VERIFY = "native+verify"
    OFF = "off"

    @property
    def serving_side(self) -> str | None:
        """Which side answers the client (and so owns what the endpoint writes)."""
        return {
            Target.GO: "go", Target.SHADOW: "go",
            Target.NATIVE: "native", Target.NATIVE_VERIFY: "native",
        }.get(self)

    @property
    def needs_native(self) -> bool:
        return self is not Target.GO and self is not Target.OFF

    @property
    def needs_go(self) -> bool:
        return self is not Target.NATIVE and self is not Target.OFF


class RouteTableError(ValueError):
    """A route table that must not be used; the message names the offending entry."""


# HTTP endpoints: (name, what it covers). Admin-port names apply to the admin port; public-port
# names to the separate public port (when -port.public differs from -port).
HTTP_ENDPOINTS: dict[str, str] = {
    "admin.read": "GET/HEAD of a file id on the admin port",
    "admin.write": "POST/PUT of a file id (uploads, replication fan-in)",
    "admin.delete": "DELETE of a file id",
    "admin.options": "OPTIONS (CORS preflight) on the admin port",
    "admin.unsupported": "any other method on the admin port (Go answers 400)",
    "admin.status": "/status",
    "admin.healthz": "/healthz and /readyz",
    "admin.ui": "/ui/index.html",
    "admin.static": "/favicon.ico and /seaweedfsstatic/*",
    "admin.stats": "/stats/counter, /stats/memory, /stats/disk",
    "public.read": "GET/HEAD on the public port",
    "public.options": "OPTIONS on the public port",
    "public.static": "/favicon.ico and /seaweedfsstatic/* on the public port",
    "public.other": "any other method on the public port (Go answers 200, no-op)",
}

GRPC_SERVICE = "/volume_server_pb.VolumeServer/"

# Every VolumeServer rpc of weed 4.48 and whether it writes volume files or server state.
GRPC_METHODS: dict[str, bool] = {
    "BatchDelete": True, "VacuumVolumeCheck": False, "VacuumVolumeCompact": True,
    "VacuumVolumeCommit": True, "VacuumVolumeCleanup": True, "DeleteCollection": True,
    "AllocateVolume": True, "VolumeSyncStatus": False, "VolumeIncrementalCopy": False,
    "VolumeMount": True, "VolumeUnmount": True, "VolumeConsolidateIndex": True,
    "VolumeDelete": True, "VolumeMarkReadonly": True, "VolumeMarkWritable": True,
    "VolumeConfigure": True, "VolumeStatus": False, "GetState": False, "SetState": True,
    "VolumeCopy": True, "ReadVolumeFileStatus": False, "CopyFile": False, "ReceiveFile": True,
    "ReadNeedleBlob": False, "ReadNeedleMeta": False, "WriteNeedleBlob": True,
    "ReadAllNeedles": False, "VolumeTailSender": False, "VolumeTailReceiver": True,
    "VolumeEcShardsGenerate": True, "VolumeEcShardsRebuild": True, "VolumeEcShardsCopy": True,
    "VolumeEcShardsDelete": True, "VolumeEcShardsMount": True, "VolumeEcShardsUnmount": True,
    "VolumeEcShardRead": False, "VolumeEcBlobDelete": True, "VolumeEcShardsToVolume": True,
    "VolumeEcShardsInfo": False, "VolumeTierMoveDatToRemote": True,
    "VolumeTierMoveDatFromRemote": True, "VolumeServerStatus": False, "VolumeServerLeave": True,
    "FetchAndWriteNeedle": True, "ScrubVolume": True, "ScrubEcVolume": True, "Query": False,
    "VolumeNeedleStatus": False, "Ping": False,
}

MUTATING_ENDPOINTS: frozenset[str] = frozenset(
    {"admin.write", "admin.delete"} | {GRPC_SERVICE + m for m, writes in GRPC_METHODS.items() if writes}
)
ALL_ENDPOINTS: frozenset[str] = frozenset(HTTP_ENDPOINTS) | {GRPC_SERVICE + m for m in GRPC_METHODS}


def grpc_endpoint(path: str) -> str:
    """The route name of a gRPC call: its full method path (unknown methods keep theirs)."""
    return path


_STATIC_PREFIX = b"/seaweedfsstatic/"
_STATIC_LEN = len(_STATIC_PREFIX)
_ADMIN_FIXED = {
    b"/status": "admin.status",
    b"/healthz": "admin.healthz",
    b"/readyz": "admin.healthz",
    b"/ui/index.html": "admin.ui",
    b"/favicon.ico": "admin.static",
    b"/stats/counter": "admin.stats",
    b"/stats/memory": "admin.stats",
    b"/stats/disk": "admin.stats",
}
_ADMIN_METHODS = {
    b"GET": "admin.read", b"HEAD": "admin.read", b"POST": "admin.write", b"PUT": "admin.write",
    b"DELETE": "admin.delete", b"OPTIONS": "admin.options",
}
_PUBLIC_METHODS = {b"GET": "public.read", b"HEAD": "public.read", b"OPTIONS": "public.options"}


def request_path(target: bytes) -> bytes:
    """The path of a request target (origin-form or absolute-form), without the query.
    (Once per request on every path: a byte's value and `int in bytes` (a memchr) decide the
    common case, as bytes' `startswith` and `find` parse their arguments the slow way, several
    times the cost.)"""
    if (not target or target[0] != 0x2F) and target.startswith((b"http://", b"https://")):
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    if 0x3F not in target:  # "?"
        return target
    return target[:target.find(b"?")]


def http_endpoint(port_kind: str, method: bytes, path: bytes) -> str:
    """Name the endpoint of an HTTP request the way Go's muxes dispatch it."""
    if port_kind == "public":
        if path == b"/favicon.ico" or path[:_STATIC_LEN] == _STATIC_PREFIX:
            return "public.static"
        return _PUBLIC_METHODS.get(method, "public.other")
    fixed = _ADMIN_FIXED.get(path)
    if fixed is not None:
        return fixed
    if path[:_STATIC_LEN] == _STATIC_PREFIX:  # a slice: bytes.startswith costs several times more
        return "admin.static"
    return _ADMIN_METHODS.get(method, "admin.unsupported")


# -- native_pct: which files a split read route serves from native -------------------------------

NATIVE_PCT_ENDPOINTS = frozenset({"admin.read", "public.read"})
_HEX = frozenset(b"0123456789abcdef")


def file_key(path: bytes) -> bytes:
    """What names a file in a read path, the same for every spelling of it: `VID,KEY` with the
    needle key's hex without leading zeros or the cookie (`/3,01637037d6`, `/3/01637037d6.jpg`,
    `/3/01637037d6/name` and `/3,1637037d6_1` all give `3,1`: key 1, cookie 637037d6). A path that names no file id is
    its own key."""
    parts = path.strip(b"/").split(b"/")
    if len(parts) >= 2:
        vid, fid = parts[0], parts[1]
    else:
        vid, _, fid = parts[0].partition(b",")
    fid = fid.split(b".", 1)[0].split(b"_", 1)[0].lower()
    if not vid.isdigit() or len(fid) <= 8 or not _HEX.issuperset(fid):
        return path
    return vid.lstrip(b"0") + b"," + (fid[:-8].lstrip(b"0") or b"0")


def native_share(path: bytes) -> float:
    """Where a file falls in [0, 100): a route with `native_pct = P` serves it from native when this
    is below P. A hash of `file_key`, the same in every process and every run."""
    digest = hashlib.blake2b(file_key(path), digest_size=8, person=b"weedpy-pct").digest()
    return int.from_bytes(digest, "big") * 100.0 / (1 << 64)



@dataclasses.dataclass(frozen=True, slots=True)
class Rollback:
    """`auto_rollback`: move the route back to Go when, over the last `window_s` seconds and with at
    least `min_samples` behind the rate, the differ's real differences or the 5xx answers exceed
    their share (percent of compared samples, of answered requests)."""

    max_real_diff_pct: float | None = None
    max_5xx_pct: float | None = None
    window_s: float = 60.0
    min_samples: int = 20

    def broken_by(self, w: Mapping[str, int]) -> str | None:
        """Why the counts of a window (the evidence's `samples`, `real`, `requests.native`,
        `5xx.native`) break this rule, or None: the one judgement of a route's and a volume's."""
        samples = w.get("samples", 0)
        if self.max_real_diff_pct is not None and samples >= self.min_samples:
            rate = w.get("real", 0) * 100.0 / samples
            if rate > self.max_real_diff_pct:
                return (f"real differences {w.get('real', 0)}/{samples} = {rate:.2f}% over {self.window_s:g}s "
                        f"> {self.max_real_diff_pct:g}%")
        answered = w.get("requests.native", 0)
        if self.max_5xx_pct is not None and answered >= self.min_samples:
            rate = w.get("5xx.native", 0) * 100.0 / answered
            if rate > self.max_5xx_pct:
                return (f"5xx answers from native {w.get('5xx.native', 0)}/{answered} = {rate:.2f}% over "
                        f"{self.window_s:g}s > {self.max_5xx_pct:g}%")
        return None

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"window_s": self.window_s, "min_samples": self.min_samples}
        if self.max_real_diff_pct is not None:
            doc["max_real_diff_pct"] = self.max_real_diff_pct
        if self.max_5xx_pct is not None:
            doc["max_5xx_pct"] = self.max_5xx_pct
        return doc


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    target: Target
    sample_pct: float = 100.0
    ignore_headers: tuple[str, ...] = ()
    ignore_fields: tuple[str, ...] = ()
    native_pct: float | None = None  # None: every request to `target`
    auto_rollback: Rollback | None = None

    @property
    def go_side(self) -> Target:
        """Where the share of files not served by native goes, and where a rollback moves the route:
        `native` -> `go`, `native+verify` -> `shadow` (still compared, served by Go)."""
        return Target.SHADOW if self.target in (Target.SHADOW, Target.NATIVE_VERIFY) else Target.GO

    def to_doc(self) -> dict[str, Any]:
        """The route as a route-table entry (TOML/JSON), the inverse of parsing it."""
        doc: dict[str, Any] = {"target": self.target.value}
        if self.sample_pct != 100.0:
            doc["sample_pct"] = self.sample_pct
        if self.ignore_headers:
            doc["ignore_headers"] = list(self.ignore_headers)
        if self.ignore_fields:
            doc["ignore_fields"] = list(self.ignore_fields)
        if self.native_pct is not None:
            doc["native_pct"] = self.native_pct
        if self.auto_rollback is not None:
            doc["auto_rollback"] = self.auto_rollback.to_doc()
        return doc


@dataclasses.dataclass(frozen=True, slots=True)
class RouteTable:
    """An immutable snapshot; requests read it once and log its version."""

    version: str
    default: Route
    routes: Mapping[str, Route]
    volume_rollback: Rollback | None = None  # `[volumes] auto_rollback`: per volume native owns (mixed mode)

    def lookup(self, endpoint: str) -> Route:
        return self.routes.get(endpoint, self.default)

    def owner_of_writes(self) -> str | None:
        """The one side that serves every storage-mutating endpoint (None if all are off)."""
        sides = {self.lookup(e).target.serving_side for e in MUTATING_ENDPOINTS} - {None}
        return next(iter(sides)) if len(sides) == 1 else None

    def targets(self) -> frozenset[Target]:
        """Every target a request can be sent to (a `native_pct` route's Go side included)."""
        routes = (self.default, *self.routes.values())
        return frozenset({r.target for r in routes} | {r.go_side for r in routes if r.native_pct is not None})

    def to_doc(self) -> dict[str, Any]:
        """The table as a document `parse_route_table` reads back (the control channel, the admin API)."""
        doc: dict[str, Any] = {"version": self.version, "default": self.default.to_doc(),
                               "routes": {name: route.to_doc() for name, route in sorted(self.routes.items())}}
        if self.volume_rollback is not None:
            doc["volumes"] = {"auto_rollback": self.volume_rollback.to_doc()}
        return doc


def _route_from(name: str, raw: Any) -> Route:
    if isinstance(raw, str):
        raw = {"target": raw}
    if not isinstance(raw, Mapping):
        raise RouteTableError(f"route {name!r}: expected a target string or a table, got {type(raw).__name__}")
    unknown = set(raw) - {"target", "sample_pct", "ignore_headers", "ignore_fields", "native_pct", "auto_rollback"}
    if unknown:
        raise RouteTableError(f"route {name!r}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        target = Target(raw.get("target", ""))
    except ValueError:
        choices = ", ".join(t.value for t in Target)
        raise RouteTableError(f"route {name!r}: unknown target {raw.get('target')!r} (one of {choices})") from None
    pct = raw.get("sample_pct", 100.0)
    if not isinstance(pct, (int, float)) or isinstance(pct, bool) or not 0 <= pct <= 100:
        raise RouteTableError(f"route {name!r}: sample_pct must be a number from 0 to 100")
    lists = {}
    for key in ("ignore_headers", "ignore_fields"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise RouteTableError(f"route {name!r}: {key} must be a list of strings")
        lists[key] = tuple(value)
    native_pct = raw.get("native_pct")
    if native_pct is not None:
        if not _is_number(native_pct) or not 0 <= native_pct <= 100:
            raise RouteTableError(f"route {name!r}: native_pct must be a number from 0 to 100")
        if name not in NATIVE_PCT_ENDPOINTS:
            raise RouteTableError(
                f"route {name!r}: native_pct splits by file id, so only {' and '.join(sorted(NATIVE_PCT_ENDPOINTS))} take it")
        if target not in (Target.NATIVE, Target.NATIVE_VERIFY):
            raise RouteTableError(f"route {name!r}: native_pct needs target native or native+verify (the share served "
                                  "by native; the rest goes to go or shadow)")
        native_pct = float(native_pct)
    rollback = _rollback_from(f"route {name!r}: auto_rollback", raw["auto_rollback"]) if "auto_rollback" in raw else None
    return Route(target=target, sample_pct=float(pct), native_pct=native_pct, auto_rollback=rollback, **lists)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rollback_from(where: str, raw: Any) -> Rollback:
    if not isinstance(raw, Mapping):
        raise RouteTableError(f"{where} must be a table (max_real_diff_pct, max_5xx_pct, window_s, min_samples)")
    unknown = set(raw) - {"max_real_diff_pct", "max_5xx_pct", "window_s", "min_samples"}
    if unknown:
        raise RouteTableError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("max_real_diff_pct", "max_5xx_pct"):
        if key in raw and (not _is_number(raw[key]) or not 0 <= raw[key] <= 100):
            raise RouteTableError(f"{where}: {key} must be a number from 0 to 100")
    if "max_real_diff_pct" not in raw and "max_5xx_pct" not in raw:
        raise RouteTableError(f"{where} needs max_real_diff_pct or max_5xx_pct")
    window = raw.get("window_s", 60.0)
    if not _is_number(window) or not 1 <= window <= 86400:
        raise RouteTableError(f"{where}: window_s must be a number of seconds from 1 to 86400")
    min_samples = raw.get("min_samples", 20)
    if not isinstance(min_samples, int) or isinstance(min_samples, bool) or min_samples < 1:
        raise RouteTableError(f"{where}: min_samples must be a whole number from 1")
    pct = {k: float(raw[k]) for k in ("max_real_diff_pct", "max_5xx_pct") if k in raw}
    return Rollback(window_s=float(window), min_samples=min_samples, **pct)


def _volumes_from(raw: Any) -> Rollback | None:
    """`[volumes]`: `auto_rollback` for every volume native owns (the route rule's keys)."""
    if not isinstance(raw, Mapping):
        raise RouteTableError("[volumes] must be a table (auto_rollback = { ... })")
    unknown = set(raw) - {"auto_rollback"}
    if unknown:
        raise RouteTableError(f"[volumes]: unknown key(s) {', '.join(sorted(unknown))}")
    return _rollback_from("[volumes] auto_rollback", raw["auto_rollback"]) if "auto_rollback" in raw else None


def parse_route_table(doc: Mapping[str, Any], version: str = "builtin") -> RouteTable:
    unknown = set(doc) - {"version", "default", "routes", "volumes"}
    if unknown:
        raise RouteTableError(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    default = _route_from("default", doc.get("default", "go"))
    if default.native_pct is not None:
        raise RouteTableError("route 'default': native_pct belongs to a read route (admin.read, public.read)")
    if default.auto_rollback is not None:
        raise RouteTableError("route 'default': auto_rollback belongs to a route of its own (name the endpoint)")
    routes_raw = doc.get("routes", {})
    if not isinstance(routes_raw, Mapping):
        raise RouteTableError("[routes] must be a table of endpoint = target")
    routes: dict[str, Route] = {}
    for name, raw in routes_raw.items():
        if name not in ALL_ENDPOINTS:
            raise RouteTableError(f"unknown endpoint {name!r} (see docs/routes.md for the names)")
        routes[name] = _route_from(name, raw)
    table = RouteTable(version=str(doc.get("version", version)), default=default, routes=routes,
                       volume_rollback=_volumes_from(doc.get("volumes", {})))
    sides = {table.lookup(e).target.serving_side for e in MUTATING_ENDPOINTS} - {None}
    if len(sides) > 1:
        split = sorted(e for e in MUTATING_ENDPOINTS if table.lookup(e).target.serving_side == "native")
        raise RouteTableError(
            "endpoints that write volume files must all be served by one side, but these go to native "
            f"while others go to go: {', '.join(split)}"
        )
    return table


def load_route_table(path: str | Path | None) -> RouteTable:
    """The table in `path`, or the built-in one (everything to go) when no file is given."""
    if path is None:
        return default_route_table()
    import tomllib  # only when there is a file to read (start-up time)

    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as exc:
        raise RouteTableError(f"cannot read route table {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RouteTableError(f"route table {p} is not valid TOML: {exc}") from None
    return parse_route_table(doc, version=f"{p.name}")


def default_route_table() -> RouteTable:
    return RouteTable(version="builtin", default=Route(Target.GO), routes={})



# -- what each mode can serve ------------------------------------------------------------------

# Native endpoints mixed mode refuses, besides every endpoint that writes volume files: the Go
# backend owns the heartbeat, so only it knows whether it stopped heartbeating (Leave).
MIXED_GO_ONLY = frozenset({"admin.healthz"})


def native_route_table(routes: RouteTable | None) -> RouteTable:
    """The table of native mode: everything native unless the operator's table says `off`."""
    if routes is None or (routes.version == "builtin" and not routes.routes):
        return RouteTable(version="native", default=Route(Target.NATIVE), routes={})
    return routes


def unsupported_targets(routes: RouteTable) -> list[str]:
    """Endpoints a native-mode table sends somewhere native mode cannot serve (there is no Go)."""
    return sorted(e for e in ALL_ENDPOINTS if routes.lookup(e).target not in (Target.NATIVE, Target.OFF)
                  or routes.lookup(e).native_pct not in (None, 100.0))


def mode_route_problem(mode: str, routes: RouteTable) -> str | None:
    """Why a table cannot serve in `mode` (proxy, native, mixed); None if it can. The one-line
    reason names the entries; the same rules hold at start and for every live change."""
    if mode == "native":
        elsewhere = unsupported_targets(routes)
        if elsewhere:
            return ("-mode=native runs no Go backend, but the route table sends these endpoints to go or a dual-run "
                    f"target: {', '.join(elsewhere[:8])}{' ...' if len(elsewhere) > 8 else ''}; use -mode=mixed")
        ruled = sorted(e for e, r in routes.routes.items() if r.auto_rollback is not None)
        if ruled:
            return (f"-mode=native has no Go side to roll back to, but these routes have auto_rollback: "
                    f"{', '.join(ruled[:8])}; use -mode=mixed")
        if routes.volume_rollback is not None:
            return "-mode=native has no Go side to roll back to, but [volumes] has auto_rollback; use -mode=mixed"
        return None
    if mode == "mixed":
        return mixed_route_problem(routes)
    if mode == "proxy" and routes.targets() - {Target.GO, Target.OFF}:
        named = sorted(e for e in ALL_ENDPOINTS if routes.lookup(e).target not in (Target.GO, Target.OFF))
        return ("-mode=proxy sends every endpoint to go; a route table with other targets needs -mode=mixed"
                + (f" ({', '.join(named[:6])}{' ...' if len(named) > 6 else ''})" if named else ""))
    return None


def mixed_route_problem(routes: RouteTable) -> str | None:
    """Why a route table is unsafe for mixed mode (None if it is fine).

    The Go backend writes the volume files and heartbeats; native handlers only read those
    files (native/follower.py). So every endpoint that writes must stay with Go, and so must
    /healthz, whose answer depends on Go's heartbeat state.
    """
    native = sorted(e for e in MUTATING_ENDPOINTS | MIXED_GO_ONLY if routes.lookup(e).target.serving_side == "native")
    if not native:
        return None
    return (
        "-mode=mixed keeps the Go backend the only writer of the volume files and the only heartbeat, "
        f"so these endpoints must stay on go: {', '.join(native[:6])}{' ...' if len(native) > 6 else ''} "
        "(use -mode=native to serve them natively)"
    )

