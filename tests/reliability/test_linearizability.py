"""Per-key linearizability across crashes: 8 clients write, delete and read 20
file ids of a native server with two worker processes, which is SIGKILLed periodically and
started again on the same files. Every operation is recorded with its call and return times
(an operation that got no answer may have happened, or not, at any time after its call); each
key's history must be linearizable as a register (`linearizability.py`): no stale read after a
restart, no resurrected delete, no lost acknowledged write, no torn value.

Fast set: 15 s with a kill every 5 s; `reliability_long`: 60 s with a kill every 10 s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.reliability.linearizability import INF, Operation, check_history, check_key, delete_ops
from tests.reliability.marks import LONG_MARKS
from tests.reliability.servers import Crashable
from tests.support.procs import MasterProc, start_master

VID = 5
KEYS = 20
CLIENTS = 8
COOKIE = 0x0BADCAFE


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = start_master(tmp_path / "master", volume_size_limit_mb=1024)
    yield m
    m.stop()


def value_body(value: tuple[int, int]) -> bytes:
    client, n = value
    tag = f"{client}:{n};".encode()
    return tag * random.Random(client * 100_003 + n).randint(1, 300)


def parse_body(data: bytes) -> tuple[int, int] | str:
    """The value a read returned, or "torn" when the bytes are not exactly some write's."""
    try:
        client, n = data.split(b";", 1)[0].split(b":")
        value = (int(client), int(n))
    except ValueError:
        return "torn"
    return value if value_body(value) == data else "torn"


def fid(key: int) -> str:
    return f"{VID},{key:x}{COOKIE:08x}"


class Recorder:
    def __init__(self) -> None:
        self.ops: list[Operation] = []
        self.torn = 0
        self.unanswered = 0
        self.refused = 0  # connection refused: never sent, never happened

    async def client(self, i: int, server: Crashable, stop: trio.Event) -> None:
        rng = random.Random(i)
        n = 0
        async with httpx.AsyncClient(timeout=10) as http:
            while not stop.is_set():
                key = rng.randint(1, KEYS)
                r = rng.random()
                kind = "write" if r < 0.45 else "delete" if r < 0.6 else "read"
                n += 1
                value = (i, n)
                url = f"{server.url}/{fid(key)}" if server.proc is not None else None
                if url is None:
                    await trio.sleep(0.05)
                    continue
                call = time.monotonic()
                try:
                    if kind == "write":
                        resp = await http.post(url, content=value_body(value), headers={"Content-Type": "application/octet-stream"})
                    elif kind == "delete":
                        resp = await http.delete(url)
                    else:
                        resp = await http.get(url)
                except httpx.ConnectError:
                    self.refused += 1
                    await trio.sleep(0.05)
                    continue
                except httpx.HTTPError:
                    resp = None
                ret = time.monotonic()
                self.record(i, key, kind, value, call, ret, resp)

    def record(self, i: int, key: int, kind: str, value: tuple[int, int], call: float, ret: float,
               resp: httpx.Response | None) -> None:
        status = resp.status_code if resp is not None else None
        answered = status is not None and status < 500
        if kind == "read":
            if not answered:
                return  # no answer: no constraint
            out = parse_body(resp.content) if status == 200 else None if status == 404 else f"status {status}"
            if out == "torn":
                self.torn += 1
            self.ops.append(Operation(key, call, ret, "read", out=out, client=i))
            return
        if not answered:
            self.unanswered += 1
            self.ops.append(Operation(key, call, INF, kind, arg=value if kind == "write" else None, client=i))
            return
        if kind == "write":
            self.ops.append(Operation(key, call, ret if status == 201 else INF, "write", arg=value, client=i))
        else:
            out = "deleted" if status == 202 else "absent" if status == 404 else None
            self.ops.extend(delete_ops(key, call, ret if out else INF, out, client=i))


def test_checker_finds_a_stale_read_and_a_resurrected_delete() -> None:
    w1 = Operation(1, 0, 1, "write", arg="a")
    w2 = Operation(1, 2, 3, "write", arg="b")
    assert check_key([w1, w2, Operation(1, 4, 5, "read", out="b")])
    assert not check_key([w1, w2, Operation(1, 4, 5, "read", out="a")])  # stale
    d = delete_ops(1, 2, 3, "deleted")
    assert not check_key([w1, *d, Operation(1, 4, 5, "read", out="a")])  # resurrected
    assert check_key([w1, *delete_ops(1, 2, INF, None), Operation(1, 4, 5, "read", out="a"),
                      Operation(1, 6, 7, "read", out=None)])  # an unanswered delete lands late
    assert not check_key([w1, *delete_ops(1, 2, INF, None), Operation(1, 4, 5, "read", out=None),
                          Operation(1, 6, 7, "read", out="a")])  # ... but only once
    # two overlapping deletes may both answer 202 (each looked the needle up before either's
    # tombstone), but not when the key was absent throughout, and a 404 is a read of "absent"
    assert check_key([w1, *delete_ops(1, 2, 4, "deleted"), *delete_ops(1, 3, 5, "deleted"),
                      Operation(1, 6, 7, "read", out=None)])
    assert not check_key([*delete_ops(1, 2, 4, "deleted"), Operation(1, 6, 7, "read", out=None)])
    assert not check_key([w1, *delete_ops(1, 2, 3, "absent")])
    assert check_key([Operation(1, 0, 4, "write", arg="a"), Operation(1, 1, 2, "read", out="a"),
                      Operation(1, 3, 5, "read", out=None)]) is False


@pytest.mark.slow
@pytest.mark.parametrize(("seconds", "every"), [pytest.param(15, 5, id="fast"),
                                                pytest.param(60, 10, id="long", marks=LONG_MARKS)])
def test_linearizable_across_kill9(tmp_path: Path, master: MasterProc, crashable, seconds: int, every: int,
                                  report: dict) -> None:
    server = crashable(master, "native", 2)
    server.start()
    server.allocate([VID])
    rec = Recorder()
    kills = 0
    kill_times: list[float] = []

    async def main() -> None:
        nonlocal kills
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for i in range(CLIENTS):
                nursery.start_soon(rec.client, i, server, stop)
            end = time.monotonic() + seconds
            rng = random.Random(seconds)
            while time.monotonic() + every * 0.7 < end:
                await trio.sleep(every * rng.uniform(0.7, 1.3))
                kill_times.append(time.monotonic())
                await trio.to_thread.run_sync(server.kill)
                kills += 1
                await trio.to_thread.run_sync(server.start)
            await trio.sleep(max(0.0, end - time.monotonic()))
            stop.set()

    trio.run(main)
    server.close()
    bad = check_history(rec.ops)
    report.update(clients=CLIENTS, keys=KEYS, seconds_of_load=seconds, kills=kills, operations=len(rec.ops),
                  reads=sum(op.kind == "read" for op in rec.ops), unanswered=rec.unanswered, refused=rec.refused,
                  torn_reads=rec.torn, non_linearizable_keys=len(bad))
    assert rec.torn == 0
    assert bad == [], _describe(rec.ops, bad[:3], kill_times)


def _describe(ops: list[Operation], keys: list, kill_times: list[float]) -> str:
    """Each bad key's operations up to the shortest prefix (by call time) that is not
    linearizable: the violation is among the last ones shown."""
    lines = [f"kills at {', '.join(f'{t:.3f}' for t in kill_times)}"]
    for k in keys:
        kops = sorted((o for o in ops if o.key == k), key=lambda o: o.call)
        lo, hi = 1, len(kops)  # smallest n with kops[:n] not linearizable
        while lo < hi:
            mid = (lo + hi) // 2
            if check_key(kops[:mid]):
                lo = mid + 1
            else:
                hi = mid
        lines.append(f"key {k}: the first {lo} of {len(kops)} operations are not linearizable; the last of them:")
        for op in kops[max(0, lo - 40):lo]:
            lines.append(f"  c{op.client} [{op.call:.3f}, {op.ret:.3f}] {op.kind} {op.arg or ''} -> {op.out}")
    return "\n".join(lines)
