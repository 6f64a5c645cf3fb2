"""A small linearizability checker for one register per key (porcupine's algorithm: Wing & Gong's
search with Lowe's memoisation of (linearized set, state)).

An operation is (call time, return time, kind, argument, output); an operation whose answer never
came has return time `INF`: it may take effect at any point after its call, or never (it then
lines up after every other operation, where no read sees it). A history is linearizable when
the operations can be put in one order that respects real time (an operation that returned
before another was called comes first) and in which every read returns the last write.

Register model: the state is a value or None (absent/deleted). `write(v)` sets v; `read`
answers the state; `present` is a read that saw some value (which one is not known). A volume
server's delete is not one atomic step: it looks the needle up, answers 404 ("absent") when it is
not there, and otherwise appends a tombstone and answers 202 ("deleted") even when another
delete got in between (Go and weedpy alike). So a delete answered "absent" is a read that saw
None; one answered "deleted" is a `present` read and a `delete` (sets None, no precondition),
both within the call (`delete_ops`); an unanswered delete is the `delete` alone. Keys are
independent: `check_history` partitions by key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Iterable

__all__ = ["Operation", "INF", "check_key", "check_history", "delete_ops"]

INF = math.inf


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    key: Hashable
    call: float
    ret: float
    kind: str  # write | delete | read | present
    arg: Hashable = None  # the value written
    out: Hashable = None  # what a read saw
    client: int = 0


def delete_ops(key: Hashable, call: float, ret: float, out: str | None, client: int = 0) -> list[Operation]:
    """A delete as the model sees it: `out` "absent" (404) a read of None; "deleted" (202) a read
    of some value and a blind delete; None (no answer, `ret` INF) the blind delete alone."""
    if out == "absent":
        return [Operation(key, call, ret, "read", out=None, client=client)]
    ops = [Operation(key, call, ret, "delete", client=client)]
    if out == "deleted":
        ops.append(Operation(key, call, ret, "present", client=client))
    return ops


def _step(state: Hashable, op: Operation) -> tuple[bool, Hashable]:
    if op.kind == "write":
        return True, op.arg
    if op.kind == "delete":
        return True, None
    if op.kind == "present":
        return state is not None, state
    return op.out == state, state


class _Entry:
    __slots__ = ("op", "idx", "is_call", "match", "prev", "next")

    def __init__(self, op: Operation | None, idx: int, is_call: bool) -> None:
        self.op, self.idx, self.is_call = op, idx, is_call
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _lift(e: _Entry) -> None:
    e.prev.next = e.next
    if e.next is not None:
        e.next.prev = e.prev
    m = e.match
    m.prev.next = m.next
    if m.next is not None:
        m.next.prev = m.prev


def _unlift(e: _Entry) -> None:
    m = e.match
    m.prev.next = m
    if m.next is not None:
        m.next.prev = m
    e.prev.next = e
    if e.next is not None:
        e.next.prev = e


def check_key(ops: list[Operation], initial: Hashable = None) -> bool:
    """Whether one key's history is linearizable."""
    events: list[tuple[float, int, _Entry]] = []
    for i, op in enumerate(ops):
        c, r = _Entry(op, i, True), _Entry(op, i, False)
        c.match = r
        events.append((op.call, 0, c))
        events.append((op.ret, 1, r))  # at equal times a call comes before a return: they overlap
    events.sort(key=lambda t: (t[0], t[1]))
    head = _Entry(None, -1, False)
    prev = head
    for _, _, e in events:
        prev.next, e.prev = e, prev
        prev = e
    state, linearized = initial, 0
    cache: set[tuple[int, Hashable]] = set()
    stack: list[tuple[_Entry, Hashable]] = []
    entry = head.next
    while head.next is not None:
        if entry.is_call:
            ok, new_state = _step(state, entry.op)
            if ok:
                new_lin = linearized | (1 << entry.idx)
                if (new_lin, new_state) not in cache:
                    cache.add((new_lin, new_state))
                    stack.append((entry, state))
                    state, linearized = new_state, new_lin
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not stack:
                return False
            entry, state = stack.pop()
            linearized &= ~(1 << entry.idx)
            _unlift(entry)
            entry = entry.next
    return True


def check_history(ops: Iterable[Operation]) -> list[Hashable]:
    """The keys whose history is not linearizable."""
    by_key: dict[Hashable, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    return [k for k, kops in sorted(by_key.items(), key=lambda kv: str(kv[0])) if not check_key(kops)]
