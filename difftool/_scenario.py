"""Scenarios: scripted traffic in TOML, parsed into recorded requests (sans-IO, no servers).

    name = "http-data-path"
    description = "uploads, reads, deletes"
    flags = ["-fileSizeLimitMB=1"]     # extra flags for every volume server of the run
    split_public = true                # each server gets a separate public port
    routes = "some-table.toml"         # optional: ignore rules from a route table (relative path)

    [ignore."admin.stats"]             # ignore rules per endpoint (field paths, header names)
    fields = ["body.Memory"]
    headers = ["Server"]

    [[step]]
    http = "PUT /1,0a1b2c3d4e?ts=1700000000"
    port = "public"                    # admin (default) or public
    headers = { "Content-Type" = "text/plain" }
    body = "text"                      # or body_b64, or body_bytes = N (deterministic bytes)
    gzip = true                        # gzip the body (mtime 0) and say so
    multipart = { name = "file", filename = "a.txt", content_type = "text/plain" }
    chunked = true                     # send the body chunked
    repeat = 3                         # send it 3 times (rates for the noise model)

    [[step]]
    grpc = "VolumeStatus"              # method of volume_server_pb.VolumeServer (or a full path)
    request = { volume_id = 1 }        # the request message in protobuf JSON form
    requests = [{...}, {...}]          # client-streaming calls
    timeout = 10                       # seconds (grpc-timeout)

    [[step]]
    sleep = 1.5                        # wait, e.g. for a heartbeat (not compared)

Instead of steps, a `[generate]` table names a seeded generator (`kind`, `seed`, `operations`;
see `_generate.py`) that makes them.

Every side gets byte-identical requests, `Host: weedpy-diff` included, so nothing in an answer
can differ because the request did.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from difftool._compare import Rules
from difftool._generate import GenerateError, GenerateSpec, parse_generate
from difftool._records import GrpcRequest, HttpRequest
from difftool._step import GRPC_METADATA, Step, endpoint_of
from proto.services import rpc_for_path
from weedpy.grpc import format_timeout
from weedpy.serve.routes import GRPC_SERVICE, RouteTable, load_route_table

__all__ = ["Step", "Scenario", "ScenarioError", "load_scenario", "parse_scenario", "endpoint_of", "scenario_files",
           "SCENARIO_DIR", "MIXED_ROUTES", "HOST"]

SCENARIO_DIR = Path(__file__).parent / "scenarios"
# The route table `--candidate mixed` runs with unless given another: every read-only rpc the
# native read-only view serves goes to native, the rest to Go.
MIXED_ROUTES = Path(__file__).parent / "routes" / "mixed-native-reads.toml"
HOST = b"weedpy-diff"
MULTIPART_BOUNDARY = b"weedpydiffboundary0123456789"


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the step."""


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    flags: tuple[str, ...] = ()
    split_public: bool = False
    ignore: Mapping[str, Rules] = dataclasses.field(default_factory=dict)
    routes: RouteTable | None = None
    source: str = ""
    generate: GenerateSpec | None = None  # steps made by a seeded generator (`_generate.py`)

    def regenerated(self, seed: int | None = None, operations: int | None = None) -> Scenario:
        """A generated scenario with another seed or size (its steps made again)."""
        if self.generate is None:
            raise ScenarioError(f"{self.name} is not generated: it has no seed or size to change")
        spec = dataclasses.replace(self.generate, seed=self.generate.seed if seed is None else seed,
                                   operations=self.generate.operations if operations is None else operations)
        try:
            spec = parse_generate(spec.to_json())
        except GenerateError as exc:
            raise ScenarioError(str(exc)) from None
        return dataclasses.replace(self, steps=spec.steps(), generate=spec)

    def rules_for(self, endpoint: str) -> Rules:
        rules = Rules()
        if self.routes is not None:
            r = self.routes.lookup(endpoint)
            rules = rules.merged(Rules.of(r.ignore_headers, r.ignore_fields))
        own = self.ignore.get(endpoint)
        return rules.merged(own) if own is not None else rules

    def endpoints(self) -> frozenset[str]:
        return frozenset(s.endpoint for s in self.steps if s.request is not None)


def _det_bytes(n: int, seed: str) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def _http_step(i: int, raw: Mapping[str, Any]) -> HttpRequest:
    where = f"step {i + 1}"
    try:
        method, target = str(raw["http"]).split(" ", 1)
    except ValueError:
        raise ScenarioError(f"{where}: http must be 'METHOD /target'") from None
    port = raw.get("port", "admin")
    if port not in ("admin", "public"):
        raise ScenarioError(f"{where}: port must be admin or public")
    headers: list[tuple[bytes, bytes]] = [(b"Host", HOST)]
    given = raw.get("headers", {})
    items = given.items() if isinstance(given, Mapping) else given
    for k, v in items:
        headers.append((str(k).encode("latin-1"), str(v).encode("latin-1")))
    sources = [k for k in ("body", "body_b64", "body_bytes") if k in raw]
    if len(sources) > 1:
        raise ScenarioError(f"{where}: give one of body, body_b64, body_bytes")
    body = b""
    if "body" in raw:
        body = str(raw["body"]).encode("utf-8")
    elif "body_b64" in raw:
        body = base64.b64decode(raw["body_b64"])
    elif "body_bytes" in raw:
        body = _det_bytes(int(raw["body_bytes"]), f"{target}:{i}")
    if raw.get("gzip"):
        body = gzip.compress(body, mtime=0)
        headers.append((b"Content-Encoding", b"gzip"))
    mp = raw.get("multipart")
    if mp is not None:
        name = str(mp.get("name", "file")).encode()
        part = [b"--" + MULTIPART_BOUNDARY, b'Content-Disposition: form-data; name="%s"' % name
                + (b'; filename="%s"' % str(mp["filename"]).encode() if "filename" in mp else b"")]
        if "content_type" in mp:
            part.append(b"Content-Type: " + str(mp["content_type"]).encode())
        body = b"\r\n".join(part) + b"\r\n\r\n" + body + b"\r\n--" + MULTIPART_BOUNDARY + b"--\r\n"
        headers.append((b"Content-Type", b"multipart/form-data; boundary=" + MULTIPART_BOUNDARY))
    if raw.get("chunked"):
        headers.append((b"Transfer-Encoding", b"chunked"))
    elif body or method.upper() in ("POST", "PUT"):
        headers.append((b"Content-Length", b"%d" % len(body)))
    return HttpRequest(method.encode(), target.encode(), tuple(headers), body, port)


def _grpc_step(i: int, raw: Mapping[str, Any]) -> GrpcRequest:
    where = f"step {i + 1}"
    name = str(raw["grpc"])
    path = name if name.startswith("/") else GRPC_SERVICE + name
    rpc = rpc_for_path(path)
    if rpc is None:
        raise ScenarioError(f"{where}: unknown gRPC method {name!r}")
    bodies = raw.get("requests")
    if bodies is None:
        bodies = [raw.get("request", {})]
    messages = []
    for b in bodies:
        try:
            messages.append(json_format.ParseDict(b, rpc.request()).SerializeToString(deterministic=True))
        except json_format.ParseError as exc:
            raise ScenarioError(f"{where}: bad request for {rpc.name}: {exc}") from None
    metadata: list[tuple[bytes, bytes]] = list(GRPC_METADATA)
    if "timeout" in raw:
        metadata.append((b"grpc-timeout", format_timeout(float(raw["timeout"]))))
    for k, v in dict(raw.get("metadata", {})).items():
        metadata.append((str(k).lower().encode(), str(v).encode()))
    return GrpcRequest(path, tuple(metadata), tuple(messages))


_STEP_KEYS = {"http", "grpc", "sleep", "port", "headers", "body", "body_b64", "body_bytes", "gzip", "multipart",
              "chunked", "repeat", "label", "request", "requests", "timeout", "metadata"}


def parse_scenario(doc: Mapping[str, Any], name: str = "scenario", base: Path | None = None) -> Scenario:
    unknown = set(doc) - {"name", "description", "flags", "split_public", "routes", "ignore", "step", "generate"}
    if unknown:
        raise ScenarioError(f"unknown key(s): {', '.join(sorted(unknown))}")
    if "generate" in doc and "step" in doc:
        raise ScenarioError("give either steps or a [generate] table, not both")
    generate = None
    steps: list[Step] = []
    if "generate" in doc:
        try:
            generate = parse_generate(dict(doc["generate"]))
        except GenerateError as exc:
            raise ScenarioError(str(exc)) from None
        steps = list(generate.steps())
    for i, raw in enumerate(doc.get("step", [])):
        extra = set(raw) - _STEP_KEYS
        if extra:
            raise ScenarioError(f"step {i + 1}: unknown key(s) {', '.join(sorted(extra))}")
        kinds = [k for k in ("http", "grpc", "sleep") if k in raw]
        if len(kinds) != 1:
            raise ScenarioError(f"step {i + 1}: needs exactly one of http, grpc, sleep")
        repeat = int(raw.get("repeat", 1))
        if kinds[0] == "sleep":
            steps.append(Step(raw.get("label", f"sleep {raw['sleep']}"), None, 1, float(raw["sleep"])))
            continue
        req = _http_step(i, raw) if kinds[0] == "http" else _grpc_step(i, raw)
        label = raw.get("label") or (raw["http"] if kinds[0] == "http" else str(raw["grpc"]))
        steps.append(Step(f"{i + 1}: {label}", req, max(1, repeat), timeout=float(raw.get("timeout", 30.0))))
    ignore: dict[str, Rules] = {}
    for endpoint, rule in dict(doc.get("ignore", {})).items():
        bad = set(rule) - {"fields", "headers", "compare_headers", "skip_headers"}
        if bad:
            raise ScenarioError(f"ignore.{endpoint}: unknown key(s) {', '.join(sorted(bad))}")
        ignore[endpoint] = Rules.of(rule.get("headers", ()), rule.get("fields", ()), rule.get("compare_headers"),
                                    rule.get("skip_headers", ()))
    routes = None
    if "routes" in doc:
        routes = load_route_table((base or Path(".")) / str(doc["routes"]))
    return Scenario(
        name=str(doc.get("name", name)), description=str(doc.get("description", "")), steps=tuple(steps),
        flags=tuple(str(f) for f in doc.get("flags", ())), split_public=bool(doc.get("split_public", False)),
        ignore=ignore, routes=routes, source=name, generate=generate,
    )


def load_scenario(path_or_name: str | Path) -> Scenario:
    """A scenario file, or the name of one in difftool/scenarios/ (with or without .toml)."""
    p = Path(path_or_name)
    if not p.exists():
        candidate = SCENARIO_DIR / (p.name if p.suffix == ".toml" else f"{p.name}.toml")
        if candidate.exists():
            p = candidate
        else:
            raise ScenarioError(f"no scenario {path_or_name!s} (files or names in {SCENARIO_DIR})")
    try:
        doc = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    try:
        return parse_scenario(doc, p.stem, p.parent)
    except ScenarioError as exc:
        raise ScenarioError(f"{p.name}: {exc}") from None


def scenario_files() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.toml"))
