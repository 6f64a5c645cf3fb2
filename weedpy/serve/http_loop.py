"""Which event loop serves a process's plain-HTTP ports: uvloop's callbacks for the common
requests with trio as uvloop's guest (weedpy/serve/uv_host.py, the default in proxy-mode workers
and native mode), or trio's loop alone (`WEEDPY_HTTP_LOOP=trio`: for comparisons, and a fallback).
Kept apart from uv_host so a process on trio alone never imports uvloop."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["HTTP_LOOP_ENV", "uvloop_http"]

HTTP_LOOP_ENV = "WEEDPY_HTTP_LOOP"


def uvloop_http(environ: Mapping[str, str]) -> bool:
    """Whether HTTP is served on uvloop (the environment may say `trio`)."""
    return environ.get(HTTP_LOOP_ENV, "uvloop") != "trio"
