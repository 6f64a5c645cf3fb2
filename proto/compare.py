"""Field-by-field differences between two FileDescriptorProtos of the same .proto file.

Used to hold our proto/*.proto to the descriptors embedded in the official weed binary. Only what
decides the wire format and gRPC routing is compared strictly (names, numbers, types, labels,
oneofs, streaming); declaration order is not. The file name may differ by directory (ours live
under proto/), so dependencies are compared by base name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from google.protobuf import descriptor_pb2 as d

__all__ = ["diff_file_descriptors", "own_file_descriptor"]

T = TypeVar("T")
F = d.FieldDescriptorProto


def own_file_descriptor(module: object) -> d.FileDescriptorProto:
    """The FileDescriptorProto behind a generated `*_pb2` module."""
    fdp = d.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(fdp)  # type: ignore[attr-defined]
    return fdp


def _json_name(f: d.FieldDescriptorProto) -> str:
    if f.HasField("json_name"):
        return f.json_name
    head, *rest = f.name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _enum_label(enum_type: object, value: int) -> str:
    try:
        return enum_type.Name(value)  # type: ignore[attr-defined]
    except ValueError:
        return str(value)


def _options(message: object) -> dict[str, object]:
    return {field.name: value for field, value in message.ListFields()}  # type: ignore[attr-defined]


class _Differ:
    def __init__(self) -> None:
        self.out: list[str] = []

    def note(self, where: str, what: str, expected: object, actual: object) -> None:
        if expected != actual:
            self.out.append(f"{where}: {what} is {actual!r}, upstream {expected!r}")

    def pair(
        self,
        where: str,
        kind: str,
        expected: Iterable[T],
        actual: Iterable[T],
        key: Callable[[T], str],
        compare: Callable[[str, T, T], None],
    ) -> None:
        """Match items by key, report the unmatched, and compare the matched ones."""
        exp = {key(x): x for x in expected}
        act = {key(x): x for x in actual}
        for name in exp.keys() - act.keys():
            self.out.append(f"{where}: missing {kind} {name}")
        for name in act.keys() - exp.keys():
            self.out.append(f"{where}: extra {kind} {name} (not upstream)")
        for name in exp.keys() & act.keys():
            compare(f"{where}.{name}" if where else name, exp[name], act[name])

    def file(self, e: d.FileDescriptorProto, a: d.FileDescriptorProto) -> None:
        where = e.name
        self.note(where, "package", e.package, a.package)
        self.note(where, "syntax", e.syntax or "proto2", a.syntax or "proto2")
        self.note(where, "edition", e.edition, a.edition)
        base = lambda deps: sorted(dep.rsplit("/", 1)[-1] for dep in deps)  # noqa: E731
        self.note(where, "dependencies (by base name)", base(e.dependency), base(a.dependency))
        self.note(where, "file options", _options(e.options), _options(a.options))
        scope = f".{e.package}" if e.package else ""
        self.pair(scope, "message", e.message_type, a.message_type, lambda m: m.name, self.message)
        self.pair(scope, "enum", e.enum_type, a.enum_type, lambda x: x.name, self.enum)
        self.pair(scope, "service", e.service, a.service, lambda s: s.name, self.service)
        self.note(where, "extension count", len(e.extension), len(a.extension))

    def message(self, where: str, e: d.DescriptorProto, a: d.DescriptorProto) -> None:
        self.note(where, "message options", _options(e.options), _options(a.options))
        self.note(
            where,
            "oneofs",
            [o.name for o in e.oneof_decl],
            [o.name for o in a.oneof_decl],
        )
        self.note(
            where,
            "reserved ranges",
            [(r.start, r.end) for r in e.reserved_range],
            [(r.start, r.end) for r in a.reserved_range],
        )
        self.note(where, "reserved names", list(e.reserved_name), list(a.reserved_name))
        self.note(
            where,
            "extension ranges",
            [(r.start, r.end) for r in e.extension_range],
            [(r.start, r.end) for r in a.extension_range],
        )
        self.pair(where, "field", e.field, a.field, lambda f: f.name, self.field)
        self.pair(where, "nested message", e.nested_type, a.nested_type, lambda m: m.name, self.message)
        self.pair(where, "nested enum", e.enum_type, a.enum_type, lambda x: x.name, self.enum)

    def field(self, where: str, e: d.FieldDescriptorProto, a: d.FieldDescriptorProto) -> None:
        self.note(where, "number", e.number, a.number)
        self.note(where, "type", _enum_label(F.Type, e.type), _enum_label(F.Type, a.type))
        self.note(where, "label", _enum_label(F.Label, e.label), _enum_label(F.Label, a.label))
        self.note(where, "type_name", e.type_name, a.type_name)
        self.note(
            where,
            "oneof index",
            e.oneof_index if e.HasField("oneof_index") else None,
            a.oneof_index if a.HasField("oneof_index") else None,
        )
        self.note(where, "proto3 optional", e.proto3_optional, a.proto3_optional)
        self.note(where, "json name", _json_name(e), _json_name(a))
        self.note(where, "default value", e.default_value, a.default_value)
        self.note(where, "field options", _options(e.options), _options(a.options))

    def enum(self, where: str, e: d.EnumDescriptorProto, a: d.EnumDescriptorProto) -> None:
        self.note(where, "enum options", _options(e.options), _options(a.options))
        first = lambda x: x.value[0].name if x.value else None  # noqa: E731 - the default value
        self.note(where, "first (default) value", first(e), first(a))
        self.pair(
            where,
            "enum value",
            e.value,
            a.value,
            lambda v: v.name,
            lambda w, ev, av: self.note(w, "number", ev.number, av.number),
        )

    def service(self, where: str, e: d.ServiceDescriptorProto, a: d.ServiceDescriptorProto) -> None:
        self.note(where, "service options", _options(e.options), _options(a.options))
        self.pair(where, "rpc", e.method, a.method, lambda m: m.name, self.method)

    def method(self, where: str, e: d.MethodDescriptorProto, a: d.MethodDescriptorProto) -> None:
        self.note(where, "input type", e.input_type, a.input_type)
        self.note(where, "output type", e.output_type, a.output_type)
        self.note(where, "client streaming", e.client_streaming, a.client_streaming)
        self.note(where, "server streaming", e.server_streaming, a.server_streaming)


def diff_file_descriptors(
    expected: d.FileDescriptorProto, actual: d.FileDescriptorProto
) -> Sequence[str]:
    """Readable differences of `actual` from `expected` (upstream); empty when they agree."""
    differ = _Differ()
    differ.file(expected, actual)
    return tuple(sorted(differ.out))
