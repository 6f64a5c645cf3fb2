"""native/storage's layering: no network, handler or client code, and a parent package reaches a
subpackage only through its public `__init__` (its `_private` modules are its own)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import native.storage

ROOT = Path(native.storage.__file__).parent
FORBIDDEN = ("native.s3", "native.http", "native.grpc", "gateway", "difftool", "httpx", "httpcore", "trio",
             "socket", "ssl", "http.client", "urllib.request", "h11", "h2", "grpc")


def _imports(path: Path) -> list[str]:
    """Absolute names of everything `path` imports (relative imports resolved), lazy ones too."""
    package = ".".join(("native", "storage", *path.relative_to(ROOT).parent.parts))
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.append(mod)
            out.extend(f"{mod}.{a.name}" for a in node.names)  # `from . import _x` names a module
    return out


def _modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def test_storage_imports_no_network_or_handler_code() -> None:
    bad = [
        (str(p.relative_to(ROOT)), name)
        for p in _modules()
        for name in _imports(p)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert bad == []


def test_a_package_uses_its_subpackages_public_init_only() -> None:
    subpackages = {".".join(("native", "storage", *p.parent.relative_to(ROOT).parts))
                   for p in ROOT.rglob("__init__.py") if p.parent != ROOT}
    bad = []
    for p in _modules():
        own = ".".join(("native", "storage", *p.relative_to(ROOT).parent.parts))
        for name in _imports(p):
            for sub in subpackages:
                rest = name.removeprefix(sub + ".")
                if rest != name and rest.startswith("_") and not own.startswith(sub):
                    bad.append((str(p.relative_to(ROOT)), name))
    assert bad == []


def test_importing_storage_loads_no_network_module() -> None:
    code = (
        "import sys, importlib, pkgutil, native.storage as s\n"
        "for m in pkgutil.walk_packages(s.__path__, 'native.storage.'): importlib.import_module(m.name)\n"
        f"bad = [n for n in sys.modules if any(n == f or n.startswith(f + '.') for f in {FORBIDDEN!r})]\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT.parent.parent)
    assert out.stdout.strip() == "[]"
