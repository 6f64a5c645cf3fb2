"""weedpy.ports: picked ports stay out of the kernel's ephemeral range and are never handed to two
pickers at once, across processes."""

from __future__ import annotations

import multiprocessing
import socket

from weedpy.ports import FIRST, PAIR_OFFSET, SPAN, _ephemeral_low, free_port, free_port_pair


def _pick_many(n: int) -> list[int]:
    return [free_port() for _ in range(n)]


def test_ports_are_below_the_ephemeral_range_and_bindable() -> None:
    assert _ephemeral_low() >= FIRST + SPAN + PAIR_OFFSET  # the ring is in use on this machine
    for _ in range(20):
        p = free_port()
        assert FIRST <= p < FIRST + SPAN
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))
        a, b = free_port_pair()
        assert b == a + PAIR_OFFSET and FIRST <= a < FIRST + SPAN and b < _ephemeral_low()


def test_concurrent_processes_never_get_the_same_port() -> None:
    """Nothing binds the picked ports here, so the probe alone cannot keep two pickers apart: only
    the shared ring can (400 random picks out of 10000 almost always collide)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        picks = [p for batch in pool.map(_pick_many, [100] * 4) for p in batch]
    assert len(picks) == 400 and len(set(picks)) == 400
