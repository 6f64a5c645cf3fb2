"""Records to JSON and back, bytes-exact: text where the bytes are readable UTF-8, base64 otherwise.

A bytes value becomes a JSON string when it is UTF-8 without control characters (other than tab
and newlines), else `{"b64": "..."}`; so fixtures stay readable and still round-trip exactly.
With `limit`, long values are cut for reports (`{"text"|"b64": ..., "cut": original_length}`);
fixtures never pass a limit.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from difftool._records import GrpcRequest, GrpcResponse, HttpRequest, HttpResponse, Outcome, Request, Response, Sample

__all__ = ["pack_bytes", "unpack_bytes", "request_to_json", "request_from_json", "response_to_json",
           "response_from_json", "outcome_to_json", "outcome_from_json", "sample_to_json", "sample_from_json"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def pack_bytes(data: bytes, limit: int | None = None) -> Any:
    cut = limit is not None and len(data) > limit
    part = data[:limit] if cut else data
    try:
        text = part.decode("utf-8")
        value: dict[str, Any] | str = text if not _CONTROL.search(text) else {"b64": base64.b64encode(part).decode()}
    except UnicodeDecodeError:
        if cut:  # a cut may split a character: keep it readable if the rest is text
            try:
                text = part.decode("utf-8", "ignore")
                if not _CONTROL.search(text):
                    return {"text": text, "cut": len(data)}
            except UnicodeDecodeError:  # pragma: no cover
                pass
        value = {"b64": base64.b64encode(part).decode()}
    if not cut:
        return value
    return {"text": value, "cut": len(data)} if isinstance(value, str) else {**value, "cut": len(data)}


def unpack_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if "b64" in value:
        return base64.b64decode(value["b64"])
    return str(value["text"]).encode("utf-8")


def _headers(hs: Any, limit: int | None = None) -> list[list[Any]]:
    return [[pack_bytes(k), pack_bytes(v, limit)] for k, v in hs]


def _unheaders(hs: Any) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((unpack_bytes(k), unpack_bytes(v)) for k, v in hs)


def request_to_json(r: Request, limit: int | None = None) -> dict[str, Any]:
    if isinstance(r, HttpRequest):
        return {"kind": "http", "port": r.port_kind, "method": pack_bytes(r.method), "target": pack_bytes(r.target),
                "headers": _headers(r.headers), "body": pack_bytes(r.body, limit)}
    return {"kind": "grpc", "method": r.method, "metadata": _headers(r.metadata),
            "messages": [pack_bytes(m, limit) for m in r.messages]}


def request_from_json(d: dict[str, Any]) -> Request:
    if d["kind"] == "http":
        return HttpRequest(unpack_bytes(d["method"]), unpack_bytes(d["target"]), _unheaders(d["headers"]),
                           unpack_bytes(d["body"]), d.get("port", "admin"))
    return GrpcRequest(d["method"], _unheaders(d["metadata"]), tuple(unpack_bytes(m) for m in d["messages"]))


def response_to_json(r: Response, limit: int | None = None) -> dict[str, Any]:
    if isinstance(r, HttpResponse):
        return {"kind": "http", "status": r.status, "reason": pack_bytes(r.reason), "headers": _headers(r.headers),
                "body": pack_bytes(r.body, limit), "truncated": r.truncated}
    return {"kind": "grpc", "headers": _headers(r.headers), "messages": [pack_bytes(m, limit) for m in r.messages],
            "trailers": _headers(r.trailers), "trailers_only": r.trailers_only, "reset_code": r.reset_code,
            "truncated": r.truncated}


def response_from_json(d: dict[str, Any]) -> Response:
    if d["kind"] == "http":
        return HttpResponse(d["status"], unpack_bytes(d["reason"]), _unheaders(d["headers"]), unpack_bytes(d["body"]),
                            bool(d.get("truncated")))
    return GrpcResponse(_unheaders(d["headers"]), tuple(unpack_bytes(m) for m in d["messages"]), _unheaders(d["trailers"]),
                        bool(d["trailers_only"]), d.get("reset_code"), bool(d.get("truncated")))


def outcome_to_json(o: Outcome, limit: int | None = None) -> dict[str, Any]:
    return {"response": None if o.response is None else response_to_json(o.response, limit), "error": o.error,
            "ms": round(o.ms, 3), "own_addrs": [pack_bytes(a) for a in o.own_addrs], "version": o.version,
            "aliases": [[pack_bytes(v), pack_bytes(p)] for v, p in o.aliases]}


def outcome_from_json(d: dict[str, Any]) -> Outcome:
    resp = d.get("response")
    return Outcome(None if resp is None else response_from_json(resp), d.get("error", ""), float(d.get("ms", 0.0)),
                   tuple(unpack_bytes(a) for a in d.get("own_addrs", ())), d.get("version", ""),
                   tuple((unpack_bytes(v), unpack_bytes(p)) for v, p in d.get("aliases", ())))


def sample_to_json(s: Sample, limit: int | None = None) -> dict[str, Any]:
    return {"endpoint": s.endpoint, "label": s.label, "routes_v": s.routes_v,
            "request": request_to_json(s.request, limit), "primary": outcome_to_json(s.primary, limit),
            "candidate": outcome_to_json(s.candidate, limit),
            "secondary": None if s.secondary is None else outcome_to_json(s.secondary, limit)}


def sample_from_json(d: dict[str, Any]) -> Sample:
    sec = d.get("secondary")
    return Sample(d["endpoint"], request_from_json(d["request"]), outcome_from_json(d["primary"]),
                  outcome_from_json(d["candidate"]), None if sec is None else outcome_from_json(sec),
                  d.get("routes_v", ""), d.get("label", ""))
