"""The package layering of docs/architecture.md, read from the import graph of the source tree.

Every `import` statement of the product packages counts, function-level ones included. The
units, top down:

    cli        weedpy.cli, weedpy.local, weedpy.mixed, weedpy.mixed_worker, weedpy.cutover, weedpy.worker,
               weedpy.volume_moves, weedpy.volume_lists, weedpy.volume_rollback: may import anything
    gateway    gateway.*            \
    native     native.* but storage  |  import serve and the cores, never each other
    difftool   difftool.*           /
    serve      weedpy.serve.*                                 imports the cores only
    cores      weedpy.* (the rest), proto.*, native.storage.*  import cores only

Plus: native.storage does no network I/O and imports no handler code; no module imports another
package's `_private` module (tests may, to test them); no import cycle between units; a
function-level import says why it is deferred on its own line (a `#` comment).
"""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("weedpy", "gateway", "native", "difftool", "proto")
CLI = ("weedpy.cli", "weedpy.local", "weedpy.mixed", "weedpy.mixed_worker", "weedpy.cutover", "weedpy.worker",
       "weedpy.volume_moves", "weedpy.volume_lists", "weedpy.volume_rollback")
UNIT_RANK = {"cores": 0, "serve": 1, "gateway": 2, "native": 2, "difftool": 2, "cli": 3}
# What native.storage must never import: network, event loop, protocol stacks, handlers.
STORAGE_FORBIDDEN = ("trio", "httpx", "h2", "socket", "ssl", "http", "urllib.request", "native.s3", "native.http",
                     "native.grpc", "weedpy.http1", "weedpy.grpc", "weedpy.serve", "gateway", "difftool")


@dataclasses.dataclass(frozen=True)
class Edge:
    importer: str  # dotted module name
    imported: str  # dotted name as written, resolved if relative (may end in an attribute)
    path: Path
    line: int
    in_function: bool
    text: str


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _edges() -> Iterator[Edge]:
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            source = path.read_text()
            lines = source.splitlines()
            tree = ast.parse(source)
            name = _module_name(path)
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            in_fn = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                     for n in ast.walk(f)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                        base = ".".join(anchor + ([node.module] if node.module else []))
                    targets = [f"{base}.{a.name}" for a in node.names] if base else []
                    targets.append(base)
                else:
                    continue
                for target in targets:
                    yield Edge(name, target, path, node.lineno, id(node) in in_fn, lines[node.lineno - 1])


EDGES = list(_edges())
OWN = [e for e in EDGES if e.imported.split(".")[0] in PACKAGES]


def _unit(module: str) -> str | None:
    top = module.split(".")[0]
    if top not in PACKAGES:
        return None
    if any(module == c or module.startswith(c + ".") for c in CLI):
        return "cli"
    if module == "weedpy.serve" or module.startswith("weedpy.serve."):
        return "serve"
    if module == "native.storage" or module.startswith("native.storage."):
        return "cores"
    if top in ("weedpy", "proto"):
        return "cores"
    return top


def _where(e: Edge) -> str:
    return f"{e.path.relative_to(ROOT)}:{e.line}: {e.text.strip()}"


def test_the_scan_sees_the_tree() -> None:
    """The scan reads real imports (a test of the test: an empty graph would pass everything)."""
    assert len(OWN) > 500
    assert any(e.importer == "native.server" and e.imported.startswith("weedpy.serve") for e in OWN)


def test_units_import_only_downward() -> None:
    bad = []
    for e in OWN:
        src, dst = _unit(e.importer), _unit(e.imported)
        if src is None or dst is None or src == dst:
            continue
        if UNIT_RANK[dst] >= UNIT_RANK[src]:
            bad.append(f"{src} -> {dst}: {_where(e)}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_cycle_between_units() -> None:
    graph: dict[str, set[str]] = {}
    for e in OWN:
        src, dst = _unit(e.importer), _unit(e.imported)
        if src and dst and src != dst:
            graph.setdefault(src, set()).add(dst)

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        return any(n == b or (n not in seen and reaches(n, b, seen | {n})) for n in graph.get(a, ()))

    cycles = sorted(u for u in graph if reaches(u, u, {u}))
    assert not cycles, f"units on an import cycle: {cycles}"


def test_storage_does_no_network_io() -> None:
    bad = [_where(e) for e in EDGES
           if _unit(e.importer) == "cores" and e.importer.startswith("native.storage")
           and any(e.imported == f or e.imported.startswith(f + ".") for f in STORAGE_FORBIDDEN)]
    assert not bad, "native.storage imports network or handler code:\n" + "\n".join(bad)


def test_importing_storage_loads_no_network_module() -> None:
    """What the scan cannot see (an import inside a dependency): load every storage module in a
    fresh interpreter and look at what came with it."""
    code = (
        "import sys, importlib, pkgutil, native.storage as s\n"
        "for m in pkgutil.walk_packages(s.__path__, 'native.storage.'): importlib.import_module(m.name)\n"
        f"bad = [n for n in sys.modules if any(n == f or n.startswith(f + '.') for f in {STORAGE_FORBIDDEN!r})]\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _private_owner(module: str) -> str | None:
    """The package a `_private` module belongs to (`native.storage` for `native.storage._idx`)."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def test_no_private_module_imported_from_outside_its_package() -> None:
    bad = []
    for e in OWN:
        owner = _private_owner(e.imported)
        if owner is not None and not (e.importer == owner or e.importer.startswith(owner + ".")):
            bad.append(_where(e))
    assert not bad, "imports of another package's private modules:\n" + "\n".join(sorted(set(bad)))


def test_function_level_imports_say_why() -> None:
    bad = sorted({_where(e) for e in EDGES if e.in_function and "#" not in e.text})
    assert not bad, "function-level imports without a reason (defer only heavy imports, and say so):\n" + "\n".join(bad)


@pytest.mark.parametrize("package", ["gateway", "native", "difftool"])
def test_middle_packages_do_not_import_each_other(package: str) -> None:
    others = {"gateway", "native", "difftool"} - {package}
    bad = [_where(e) for e in OWN if _unit(e.importer) == package and _unit(e.imported) in others]
    assert not bad, f"{package} imports a sibling:\n" + "\n".join(bad)
