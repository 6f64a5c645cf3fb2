"""weedpy.ports: picked ports stay out of the kernel's ephemeral range and are never handed to two
pickers at once, across processes."""

from __future__ import annotations

import multiprocessing
import socket

import pytest

from weedpy import ports
from weedpy.ports import FIRST, PAIR_OFFSET, SPAN, free_port, free_port_pair


def _slots(n: int) -> list[int]:
    return [ports._next_slot() for _ in range(n)]


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    return True


def test_ports_are_below_the_ephemeral_range_and_bindable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_ephemeral_low", lambda: 32768)  # Linux's default range
    for _ in range(20):
        p = free_port()
        assert FIRST <= p < FIRST + SPAN and _bindable(p)
        a, b = free_port_pair()
        assert b == a + PAIR_OFFSET and FIRST <= a < FIRST + SPAN and b < 32768 and _bindable(b)


def test_a_low_ephemeral_range_falls_back_to_the_kernels_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_ephemeral_low", lambda: 1024)
    assert _bindable(free_port())
    a, b = free_port_pair()
    assert b == a + PAIR_OFFSET and _bindable(a) and _bindable(b)


def test_concurrent_processes_never_get_the_same_slot() -> None:
    """The shared ring keeps pickers apart; the bind probe alone cannot, since nothing binds a
    picked port at once (400 random picks out of 10000 almost always collide)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        picks = [p for batch in pool.map(_slots, [100] * 4) for p in batch]
    assert len(picks) == 400 and len(set(picks)) == 400 and all(0 <= p < SPAN for p in picks)
