"""Go-compatible command-line flag parsing for `weed volume` and weedpy's own additions.

Go's `flag` package (as patched by SeaweedFS's fla9) accepts `-name=value`, `--name=value`,
`-name value`, `--name value` and a bare `-name` for booleans; any flag not given on the command
line is then read from the environment variable `UPPER(name)` with `.` and `-` turned into `_`,
and finally from an `-options=FILE` of `name=value` lines. We reproduce those forms and that
precedence so that an operator's existing `weed volume` command line (or the upstream harness's
double-dash form) works unchanged. Unlike Go we refuse unknown flags instead of silently dropping
everything after them: a typo must not start a server on the wrong port.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "FlagError",
    "HelpRequested",
    "Kind",
    "FlagSpec",
    "ParsedFlags",
    "parse_flags",
    "parse_go_duration",
    "format_go_duration",
    "parse_go_bool",
    "parse_go_int",
    "env_key",
    "go_quote",
    "go_flag_text",
    "format_usage",
    "print_usage",
]


class FlagError(ValueError):
    """A flag that is unknown or whose value does not parse; the CLI exits 2 with its message."""


class HelpRequested(FlagError):
    """`-h`/`-help` was given: the CLI prints the usage and exits 0 instead of failing."""


class Kind(enum.Enum):
    STRING = "string"
    INT = "int"
    BOOL = "bool"
    DURATION = "duration"


_BOOL_WORDS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}


def parse_go_bool(text: str) -> bool:
    """strconv.ParseBool."""
    try:
        return _BOOL_WORDS[text]
    except KeyError:
        raise ValueError(f"invalid syntax {text!r}") from None


def parse_go_int(text: str) -> int:
    """strconv.ParseInt(s, 0, 64): optional sign, 0x/0o/0b prefixes, leading-0 octal, `_` separators."""
    if not re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO]?[0-7_]*|[1-9][0-9_]*)", text):
        raise ValueError(f"invalid syntax {text!r}")
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").replace("_", "")
    if body[:2] in ("0x", "0X"):
        value = int(body[2:], 16)
    elif body[:2] in ("0b", "0B"):
        value = int(body[2:], 2)
    elif body[:2] in ("0o", "0O"):
        value = int(body[2:], 8)
    elif len(body) > 1 and body[0] == "0":
        value = int(body[1:], 8)
    else:
        value = int(body)
    value *= sign
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"value out of range {text!r}")
    return value


_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """time.ParseDuration, returning seconds: `2s`, `1m30s`, `1.5h`, `300ms`, `0`."""
    s = text
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m or m.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_go_duration(seconds: float) -> str:
    """time.Duration.String() for whole-millisecond values, e.g. 60 -> `1m0s`, 2 -> `2s`."""
    if seconds == 0:
        return "0s"
    ms = round(seconds * 1000)
    if abs(ms) < 1000:
        return f"{ms}ms"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    hours, rem = divmod(ms, 3_600_000)
    minutes, rem = divmod(rem, 60_000)
    secs = rem / 1000
    sec_text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{sec_text}"
    if minutes:
        return f"{sign}{minutes}m{sec_text}"
    return f"{sign}{sec_text}"


@dataclasses.dataclass(frozen=True, slots=True)
class FlagSpec:
    name: str
    kind: Kind
    default: Any
    help: str
    # Extra value check beyond the type, raising ValueError with a short reason.
    check: Callable[[Any], None] | None = None
    # Read from the environment when not given (Go's fla9 behaviour); weedpy's own flags opt out.
    from_env: bool = True

    def convert(self, text: str) -> Any:
        if self.kind is Kind.STRING:
            value: Any = text
        elif self.kind is Kind.INT:
            value = parse_go_int(text)
        elif self.kind is Kind.BOOL:
            value = parse_go_bool(text)
        else:
            value = parse_go_duration(text)
        if self.check is not None:
            self.check(value)
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedFlags:
    values: Mapping[str, Any]
    # Names given explicitly (command line, environment or -options file), in that precedence.
    explicit: frozenset[str]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def env_key(name: str) -> str:
    return name.upper().replace("-", "_").replace(".", "_")


def _split_arg(arg: str) -> tuple[str, str | None] | None:
    """`-a=b` / `--a b` -> (name, value-or-None); None for a non-flag argument."""
    if len(arg) < 2 or arg[0] != "-":
        return None
    body = arg[2:] if arg.startswith("--") else arg[1:]
    if not body or body[0] in "-=":
        raise FlagError(f"bad flag syntax: {arg}")
    name, eq, value = body.partition("=")
    return name, (value if eq else None)


def parse_flags(
    specs: Sequence[FlagSpec],
    argv: Sequence[str],
    environ: Mapping[str, str] | None = None,
    aliases: Mapping[str, str] | None = None,
    read_file: Callable[[str], str] | None = None,
) -> ParsedFlags:
    """Parse argv against specs with Go's forms and precedence (argv > env > -options file > default).

    `aliases` maps an accepted spelling to the canonical flag name (e.g. `mserver` -> `master`).
    Raises FlagError for unknown flags, missing values, bad values and stray positional arguments.
    """
    by_name = {s.name: s for s in specs}
    aliases = dict(aliases or {})
    values: dict[str, Any] = {s.name: s.default for s in specs}
    explicit: set[str] = set()

    def assign(raw_name: str, text: str, origin: str) -> None:
        name = aliases.get(raw_name, raw_name)
        spec = by_name.get(name)
        if spec is None:
            raise FlagError(f"flag provided but not defined: -{raw_name}")
        try:
            values[name] = spec.convert(text)
        except ValueError as exc:
            raise FlagError(f"invalid value {text!r} for flag -{raw_name}{origin}: {exc}") from None
        explicit.add(name)

    i = 0
    args = list(argv)
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        split = _split_arg(arg)
        if split is None:
            break
        raw_name, value = split
        if raw_name in ("h", "help"):
            raise HelpRequested("help requested")
        name = aliases.get(raw_name, raw_name)
        spec = by_name.get(name)
        if spec is None:
            raise FlagError(f"flag provided but not defined: -{raw_name}")
        if value is None:
            if spec.kind is Kind.BOOL:
                value = "true"
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                raise FlagError(f"flag needs an argument: -{raw_name}")
        assign(raw_name, value, "")
        i += 1
    if i < len(args):
        raise FlagError(f"unexpected argument: {args[i]!r}")

    if environ is not None:
        for spec in specs:
            if spec.name in explicit or not spec.from_env:
                continue
            key = env_key(spec.name)
            if key in environ:
                text = environ[key]
                if spec.kind is Kind.BOOL and text == "":
                    text = "true"
                assign(spec.name, text, f" (from environment variable {key})")

    options_file = values.get("options") or ""
    if options_file and read_file is not None:
        for raw_name, text in _option_lines(read_file(options_file)):
            if aliases.get(raw_name, raw_name) in explicit:
                continue
            assign(raw_name, text, f" (from {options_file})")
    return ParsedFlags(values=values, explicit=frozenset(explicit))


def _option_lines(text: str) -> Iterable[tuple[str, str]]:
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        if not eq:
            raise FlagError(f"bad line in options file: {line!r}")
        yield name.strip().lstrip("-"), value.strip()


_GO_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    "\\": "\\\\", '"': '\\"',
}


def go_quote(text: str) -> str:
    """strconv.Quote (Go's `%q`): double quotes, C escapes, `\\xhh` for control and undecodable bytes."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_TYPE_NAMES = {Kind.STRING: "string", Kind.INT: "int", Kind.BOOL: "", Kind.DURATION: "duration"}
_ZERO_TEXT = {Kind.STRING: "", Kind.INT: "0", Kind.BOOL: "false", Kind.DURATION: "0s"}


def go_flag_text(spec: FlagSpec, value: Any) -> str:
    """The flag.Value String() of a value: what Go prints as a default, and a value text Go's
    flag package accepts back (`-name=<text>` on a Go command line)."""
    if spec.kind is Kind.BOOL:
        return "true" if value else "false"
    if spec.kind is Kind.DURATION:
        return format_go_duration(value)
    return str(value)


def format_usage(specs: Iterable[FlagSpec], defaults: Mapping[str, Any] | None = None) -> str:
    """flag.PrintDefaults: one entry per flag sorted by name, defaults in Go's forms.

    `  -name type` then `    <tab>help (default X)`; the type name comes from a back-quoted word in
    the help or from the kind (none for booleans); a default equal to the kind's zero value is not
    shown, and a string default is quoted with Go's `%q`. `defaults` overrides a spec's default for
    display, for defaults computed at parse time (Go shows `-ip`'s detected address).
    """
    defaults = defaults or {}
    lines = []
    for spec in sorted(specs, key=lambda s: s.name):
        head = f"  -{spec.name}"
        type_name, help_text = _TYPE_NAMES[spec.kind], spec.help
        quoted = re.search(r"`([^`]*)`", help_text)
        if quoted:
            type_name = quoted.group(1)
            help_text = help_text[: quoted.start()] + type_name + help_text[quoted.end():]
        if type_name:
            head += f" {type_name}"
        head += "\t" if len(head) <= 4 else "\n    \t"
        text = head + help_text.replace("\n", "\n    \t")
        default = go_flag_text(spec, defaults.get(spec.name, spec.default))
        if default != _ZERO_TEXT[spec.kind]:
            text += f" (default {go_quote(default) if spec.kind is Kind.STRING else default})"
        lines.append(text)
    return "\n".join(lines)


def print_usage(text: str) -> None:
    """Print a usage text to stdout; a reader that stops early (`weedpy volume -h | head`) is no error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def environ_without_flags(specs: Iterable[FlagSpec], environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of environ without the variables Go would read as flags (for child weed processes)."""
    keys = {env_key(s.name) for s in specs}
    return {k: v for k, v in environ.items() if k not in keys}


__all__.append("environ_without_flags")
