"""The methods dataclasses and attrs generate for start-up's classes, compiled once and kept.

Both libraries write each class's `__init__`, `__repr__`, `__eq__`, ... as source text and
compile it while the class is made: about 430 compilations before a native server answers
(its own ~70 dataclasses, trio's attrs classes), a quarter of its imports' CPU. The text is the
same at every start, so its code object can be kept as a module's bytecode is: `GeneratedCode`
stands in for the compile step of both libraries (their module-level `exec` and `compile`
names) and answers from a file of code objects keyed by the exact text, file name and compiler
flags they compile with; what it had to compile is written back once start-up's imports are
done. The classes come out as they would without it: the same text compiled the same way, only
earlier. The file lives where Python keeps the package's bytecode (`__pycache__` or
`PYTHONPYCACHEPREFIX`), is not written when bytecode is not (`PYTHONDONTWRITEBYTECODE`), is
checked against the interpreter's bytecode magic number and read as nothing when anything about
it is off.
"""

from __future__ import annotations

import __future__
import builtins
import dataclasses
import importlib.util
import marshal
import os
import sys
from types import CodeType, ModuleType
from typing import Any

import attr._make

__all__ = ["GeneratedCode", "cache_path"]

_MAGIC = importlib.util.MAGIC_NUMBER
_Key = tuple[str, str, int]  # (file name, source text, compiler flags)


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

    def install(self) -> GeneratedCode:
        """Stand in for dataclasses' `exec` of a method's text and attrs' `compile` of its script."""
        flags = _future_flags(dataclasses)

        def exec_text(source: Any, globals: Any = None, locals: Any = None) -> None:
            if not isinstance(source, str):
                return builtins.exec(source, globals, locals)
            return builtins.exec(self.code(source, "<string>", flags), globals, locals)

        attrs_flags = _future_flags(attr._make)

        def compile_script(source: Any, filename: str, mode: str, flags: int = 0, dont_inherit: bool = False,
                           optimize: int = -1) -> CodeType:
            flags = flags if dont_inherit else flags | attrs_flags  # what attrs' own call would inherit
            if isinstance(source, str) and mode == "exec" and optimize == -1 and "def __hash__" not in source:
                return self.code(source, filename, flags)
            # attrs seeds a hashable class's __hash__ with a number that changes with every process
            # (its name's string hash): such a script never comes again
            return builtins.compile(source, filename, mode, flags, True, optimize)

        for module, name, stand_in in ((dataclasses, "exec", exec_text), (attr._make, "compile", compile_script)):
            if name not in vars(module):  # each library calls the builtin through its module's globals
                setattr(module, name, stand_in)
                self._patched.append((module, name))
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
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                tmp = f"{self.path}.{os.getpid()}.tmp"
                with open(tmp, "wb") as f:
                    f.write(_MAGIC + marshal.dumps(self.codes))
                os.replace(tmp, self.path)
            except (OSError, ValueError):
                pass
        self.codes = {}
