"""The methods dataclasses and attrs generate for start-up's classes, compiled once and kept.

Both libraries write each class's `__init__`, `__repr__`, `__eq__`, ... as source text and
compile it while the class is made: about 460 compilations before a native server answers
(its own ~70 dataclasses, trio's and attrs's own attrs classes), a quarter of its imports' CPU.
The text is the same at every start, so its code object can be kept as a module's bytecode is:
`GeneratedCode` stands in for the compile step of both libraries (their module-level `exec` and
`compile` names; attrs's before its module's code runs, for its own classes) and answers from a
file of code objects keyed by the exact text, file name and compiler flags they compile with;
what it had to compile is added to the file once start-up's imports are done. The classes come out
as they would without it: the same text compiled the same way, only earlier. One part of a text
changes at every start, the number of the process attrs's `__hash__` starts from (`_SEEDED`):
that script is kept with a stand-in, and the number goes back into the code's constants. The
file lives where Python keeps the package's bytecode (`__pycache__` or
`PYTHONPYCACHEPREFIX`), is not written when bytecode is not (`PYTHONDONTWRITEBYTECODE`), is
checked against the interpreter's bytecode magic number and read as nothing when anything about
it is off.
"""

from __future__ import annotations

import __future__
import builtins
import dataclasses
import importlib.machinery
import importlib.util
import marshal
import os
import re
import sys
from types import CodeType, ModuleType
from typing import Any

__all__ = ["GeneratedCode", "cache_path"]

_MAGIC = importlib.util.MAGIC_NUMBER
_Key = tuple[str, str, int]  # (file name, source text, compiler flags)

# attrs's `__hash__` hashes a number of the class's own first, the string hash of a name, which
# changes with every process: the script is kept with 7 in its place, and the code object gets
# the number back (the one difference: the column span recorded for loading that constant)
_SEEDED = re.compile(r"(hash\(\(\n[ ]+)(-?[0-9]+)(,\n)")
_STAND_IN = 7


def cache_path() -> str:
    """Where the code is kept: the bytecode path of a module beside this one that does not exist
    (so it follows `PYTHONPYCACHEPREFIX` and names the interpreter)."""
    return importlib.util.cache_from_source(os.path.join(os.path.dirname(__file__), "_generated_code.py"))


def _future_flags(module: ModuleType) -> int:
    """The compiler flags a module's own `compile`/`exec` calls inherit (its __future__ imports)."""
    flags = 0
    for name in __future__.all_feature_names:
        feature = getattr(__future__, name)
        if getattr(module, name, None) is feature:
            flags |= feature.compiler_flag
    return flags


class GeneratedCode:
    """Answers the generating libraries' compile step from the kept code while installed
    (`install` .. `finish`); `compiled`: how many texts it had to compile itself."""

    def __init__(self, path: str | None = None) -> None:
        self.path = cache_path() if path is None else path
        self.codes: dict[_Key, CodeType] = self._read()
        self.compiled = 0
        self._patched: list[tuple[ModuleType, str]] = []

    def _read(self) -> dict[_Key, CodeType]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
            if data[:len(_MAGIC)] != _MAGIC:
                return {}
            codes = marshal.loads(data[len(_MAGIC):])
        except (OSError, ValueError, EOFError, TypeError):
            return {}
        return codes if isinstance(codes, dict) else {}

    def code(self, source: str, filename: str, flags: int) -> CodeType:
        """The code object `compile(source, filename, "exec", flags, dont_inherit=True)` gives."""
        key = (filename, source, flags)
        found = self.codes.get(key)
        if type(found) is not CodeType:
            found = self.codes[key] = compile(source, filename, "exec", flags, dont_inherit=True)
            self.compiled += 1
        return found

    def seeded_code(self, source: str, filename: str, flags: int) -> CodeType | None:
        """An attrs script with a `__hash__` (see `_SEEDED`) from the kept code, or None when its
        number cannot be put back where it was."""
        seeds = {m.group(2) for m in _SEEDED.finditer(source)}
        if len(seeds) != 1:
            return None
        seed = int(seeds.pop())
        code = self.code(_SEEDED.sub(lambda m: f"{m.group(1)}{_STAND_IN}{m.group(3)}", source), filename, flags)
        put: list[bool] = []

        def back(const: Any, in_hash: bool) -> Any:  # the stand-in is put back in `__hash__` only
            if in_hash and type(const) is int and const == _STAND_IN:
                put.append(True)
                return seed
            if type(const) is tuple:
                return tuple(back(c, in_hash) for c in const)
            if type(const) is CodeType:
                in_hash = in_hash or const.co_name == "__hash__"
                return const.replace(co_consts=tuple(back(c, in_hash) for c in const.co_consts))
            return const

        code = back(code, False)
        return code if put else None

    def install(self) -> GeneratedCode:
        """Stand in for dataclasses' `exec` of a method's text and attrs' `compile` of its script
        (attrs's own classes included: the stand-in is in its module before its code runs)."""
        flags = _future_flags(dataclasses)

        def exec_text(source: Any, globals: Any = None, locals: Any = None) -> None:
            if not isinstance(source, str):
                return builtins.exec(source, globals, locals)
            return builtins.exec(self.code(source, "<string>", flags), globals, locals)

        def compile_script(source: Any, filename: str, mode: str, flags: int = 0, dont_inherit: bool = False,
                           optimize: int = -1) -> CodeType:
            if not dont_inherit:  # what attrs' own call inherits: its module's __future__ imports
                flags |= _future_flags(sys.modules["attr._make"])
            if isinstance(source, str) and mode == "exec" and optimize == -1:
                if "def __hash__" not in source:
                    return self.code(source, filename, flags)
                code = self.seeded_code(source, filename, flags)
                if code is not None:
                    return code
            return builtins.compile(source, filename, mode, flags, True, optimize)

        if _name_free(dataclasses, "exec"):
            dataclasses.exec = exec_text  # type: ignore[attr-defined]
            self._patched.append((dataclasses, "exec"))
        attrs_make = sys.modules.get("attr._make")
        if attrs_make is None:
            finder = _Seeding("attr._make", "compile", compile_script)
            sys.meta_path.insert(0, finder)
            try:
                import attr._make  # here, so that the finder above puts the stand-in in first
            finally:
                sys.meta_path.remove(finder)
            if finder.seeded is not None:
                self._patched.append((finder.seeded, "compile"))
        elif _name_free(attrs_make, "compile"):
            attrs_make.compile = compile_script  # type: ignore[attr-defined]
            self._patched.append((attrs_make, "compile"))
        return self

    def finish(self) -> None:
        """Start-up's imports are done: the builtins are the libraries' again, and what was
        compiled is kept for the next start (unless bytecode is not written; best effort, as
        Python's own bytecode writes)."""
        for module, name in self._patched:
            if name in vars(module):
                delattr(module, name)
        self._patched.clear()
        if self.compiled and not sys.dont_write_bytecode:
            tmp = f"{self.path}.{os.getpid()}.tmp"  # a process's own: the leader and its workers may write at once
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(_MAGIC + marshal.dumps(self.codes))
                os.replace(tmp, self.path)
            except (OSError, ValueError):
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        self.codes, self.compiled = {}, 0  # a second finish writes nothing


def _name_free(module: ModuleType, name: str) -> bool:
    """Whether `module` calls the builtin `name` (nothing of its own or another stand-in's there)."""
    return name not in vars(module)


class _Seeding:
    """A meta-path finder for one module that sets `name` in the module's namespace before its
    code runs (`seeded`: the module, once loaded so)."""

    def __init__(self, module: str, name: str, value: Any) -> None:
        self.module, self.name, self.value = module, name, value
        self.seeded: ModuleType | None = None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.module:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = None if spec is None else spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            setattr(module, self.name, self.value)
            self.seeded = module
            run(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
