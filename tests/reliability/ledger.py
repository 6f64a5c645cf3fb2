"""A client-side ledger of acknowledged writes and deletes, and the load that fills it.

Jepsen's rule: what the server acknowledged must be there after any crash; an operation whose
answer never came (a timeout, a reset connection, a 5xx) may have happened or not, but wholly:
the key then reads back as before it or as after it, byte for byte, nothing else.

Bodies are not kept: version `seq` of key `k` with `size` bytes is always the same bytes
(`body`), so a read is compared with what the ledger allows by regenerating them.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence

import httpx
import trio

__all__ = ["COOKIE", "Value", "DELETED", "ABSENT", "body", "fid", "Ledger", "run_writers", "check_all", "pick_size",
           "Where"]

# Where a volume's keys go: one server's URL, or a function of the volume id (volumes that move
# between servers), asked at each request.
Where = str | Callable[[int], str]


def _base(url: Where, vid: int) -> str:
    return url if isinstance(url, str) else url(vid)

COOKIE = 0x5EED1234


@dataclasses.dataclass(frozen=True, slots=True)
class Value:
    """What a key holds: version `seq` with `size` bytes, or nothing (`seq` < 0)."""

    seq: int
    size: int = 0

    @property
    def live(self) -> bool:
        return self.seq >= 0


ABSENT = Value(-1)
DELETED = Value(-2)


def body(key: int, v: Value) -> bytes:
    return random.Random(key * 1_000_003 + v.seq).randbytes(v.size)


def fid(vid: int, key: int) -> str:
    return f"{vid},{key:x}{COOKIE:08x}"


def pick_size(rng: random.Random, max_size: int = 1 << 20) -> int:
    """0 B to 1 MiB, mostly small (as a volume server sees them), some large."""
    r = rng.random()
    if r < 0.08:
        return 0
    if r < 0.55:
        return rng.randint(1, 4096)
    if r < 0.88:
        return rng.randint(4097, 65536)
    return rng.randint(65537, max_size)


@dataclasses.dataclass
class KeyState:
    vid: int
    acked: Value = ABSENT
    maybe: Value | None = None  # an operation whose outcome is unknown


@dataclasses.dataclass
class Ledger:
    keys: dict[int, KeyState]
    violations: list[str] = dataclasses.field(default_factory=list)
    acked_writes: int = 0
    acked_deletes: int = 0
    acked_bytes: int = 0
    reads_checked: int = 0
    unknown: int = 0  # operations without an answer
    unknown_applied: int = 0  # ... found applied after the restart
    next_seq: int = 0

    @classmethod
    def create(cls, vids: Sequence[int], keys_per_vid: int, first_key: int = 1) -> "Ledger":
        keys = {}
        k = first_key
        for vid in vids:
            for _ in range(keys_per_vid):
                keys[k] = KeyState(vid)
                k += 1
        return cls(keys)

    def violation(self, msg: str) -> None:
        if len(self.violations) < 200:
            self.violations.append(msg)

    def seq(self) -> int:
        self.next_seq += 1
        return self.next_seq

    def judge(self, key: int, status: int, content: bytes, *, allow_maybe: bool) -> Value | None:
        """Which allowed value a read (status, body) shows; None (and a violation) if none."""
        st = self.keys[key]
        allowed = [st.acked] + ([st.maybe] if allow_maybe and st.maybe is not None else [])
        for v in allowed:
            if v.live and status == 200 and len(content) == v.size and content == body(key, v):
                return v
            if not v.live and status == 404:
                return v
        desc = f"{status} with {len(content)} bytes" if status == 200 else str(status)
        self.violation(f"key {key} (vid {st.vid}): read {desc}, allowed {allowed}")
        return None


async def _write(client: httpx.AsyncClient, url: Where, led: Ledger, key: int, rng: random.Random,
                 max_size: int) -> None:
    st = led.keys[key]
    v = Value(led.seq(), pick_size(rng, max_size))
    try:
        r = await client.post(f"{_base(url, st.vid)}/{fid(st.vid, key)}", content=body(key, v),
                              headers={"Content-Type": "application/octet-stream"})
    except httpx.HTTPError:
        r = None
    if r is not None and r.status_code == 201:
        st.acked = v
        led.acked_writes += 1
        led.acked_bytes += v.size
    else:
        st.maybe = v
        led.unknown += 1


async def _delete(client: httpx.AsyncClient, url: Where, led: Ledger, key: int) -> None:
    st = led.keys[key]
    try:
        r = await client.delete(f"{_base(url, st.vid)}/{fid(st.vid, key)}")
    except httpx.HTTPError:
        r = None
    if r is not None and r.status_code == 202:
        st.acked = DELETED
        led.acked_deletes += 1
    elif r is not None and r.status_code == 404:
        led.violation(f"key {key}: delete of acknowledged {st.acked} answered 404 (lost write)")
    else:
        st.maybe = DELETED
        led.unknown += 1


async def _read(client: httpx.AsyncClient, url: Where, led: Ledger, key: int) -> None:
    st = led.keys[key]
    try:
        r = await client.get(f"{_base(url, st.vid)}/{fid(st.vid, key)}")
    except httpx.HTTPError:
        return
    if r.status_code >= 500:
        return  # the server going down, not an answer about the key
    led.reads_checked += 1
    led.judge(key, r.status_code, r.content, allow_maybe=False)


async def run_writers(url: Where, led: Ledger, stop: trio.Event, *, writers: int = 16, seed: int = 0,
                      max_size: int = 1 << 20, timeout: float = 30, pause: float = 0.0) -> None:
    """`writers` tasks, each on its own keys, writing (new and over), deleting and reading back
    until `stop`, `pause` seconds after each operation; a key whose operation got no answer is
    left alone until the next check."""
    keys = sorted(led.keys)
    async with httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=writers * 2)) as client:

        async def writer(i: int) -> None:
            rng = random.Random(seed * 7919 + i)
            mine = keys[i::writers]
            while not stop.is_set():
                free = [k for k in mine if led.keys[k].maybe is None]
                if not free:
                    return
                key = rng.choice(free)
                r = rng.random()
                if r < 0.6 or not led.keys[key].acked.live:
                    await _write(client, url, led, key, rng, max_size)
                elif r < 0.8:
                    await _delete(client, url, led, key)
                else:
                    await _read(client, url, led, key)
                await trio.sleep(pause)

        async with trio.open_nursery() as nursery:
            for i in range(writers):
                nursery.start_soon(writer, i)


async def check_all(url: Where, led: Ledger, *, concurrency: int = 8, timeout: float = 60) -> None:
    """Read every key: it must show its acknowledged value or, for a key whose last operation got
    no answer, that operation's result whole; the ledger then takes what was found."""
    keys = sorted(led.keys)
    limiter = trio.CapacityLimiter(concurrency)
    async with httpx.AsyncClient(timeout=timeout) as client:

        async def one(key: int) -> None:
            st = led.keys[key]
            async with limiter:
                r = None
                for _ in range(5):
                    try:
                        r = await client.get(f"{_base(url, st.vid)}/{fid(st.vid, key)}")
                    except httpx.HTTPError:
                        await trio.sleep(0.5)
                        continue
                    if r.status_code < 500:
                        break
                    await trio.sleep(0.5)
            if r is None or r.status_code >= 500:
                led.violation(f"key {key} (vid {st.vid}): no answer after the restart ({r and r.status_code})")
                return
            led.reads_checked += 1
            seen = led.judge(key, r.status_code, r.content, allow_maybe=True)
            if seen is not None:
                if st.maybe is not None and seen == st.maybe and seen != st.acked:
                    led.unknown_applied += 1
                st.acked = seen
            st.maybe = None

        async with trio.open_nursery() as nursery:
            for key in keys:
                nursery.start_soon(one, key)
