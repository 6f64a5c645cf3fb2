"""The native rpc tables: every handler is a module-level function named after its rpc, of the
shape its streaming kind needs, registered once (private imports: tests/test_layering.py)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import native
import native.grpc
from native.grpc import HANDLERS, READ_ONLY_RPCS
from proto.services import RPCS, VOLUME_SERVER

P = "/volume_server_pb.VolumeServer/"
FAMILIES = sorted(p for p in Path(native.grpc.__file__).parent.glob("_*.py") if p.stem != "_router")  # _router: their union


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_each_handler_is_a_top_level_function_named_after_its_rpc(name: str) -> None:
    fn = HANDLERS[name]
    assert fn.__name__ == _snake(name) and fn.__qualname__ == fn.__name__
    assert getattr(inspect.getmodule(fn), fn.__name__) is fn
    assert list(inspect.signature(fn).parameters)[0] == "svc"
    kind = RPCS[P + name].kind
    if kind.server_streaming:
        assert inspect.isasyncgenfunction(fn)
    else:
        assert inspect.iscoroutinefunction(fn)


def test_every_rpc_is_registered_by_exactly_one_family() -> None:
    tables = [m.HANDLERS for m in (getattr(native.grpc, p.stem) for p in FAMILIES) if hasattr(m, "HANDLERS")]
    names = [n for t in tables for n in t]
    assert len(names) == len(set(names)) == len(HANDLERS)
    assert set(HANDLERS) <= {r.name for r in VOLUME_SERVER}
    assert READ_ONLY_RPCS <= {P + n for n in HANDLERS}


def test_no_handler_is_nested() -> None:
    """A family module defines its handlers at top level: no `def` inside a function takes `ctx`."""
    nested = []
    for path in FAMILIES:
        for top in ast.parse(path.read_text()).body:
            if not isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(top):
                if node is not top and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if "ctx" in [a.arg for a in node.args.args]:
                        nested.append(f"{path.name}:{top.name}.{node.name}")
    assert nested == []
