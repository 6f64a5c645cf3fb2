"""The leader's worker processes: spawned with the listening HTTP sockets, restarted when they
die, told about every state change before the leader answers the request that made it.

A worker is `python -m weedpy.worker` (it arms its own parent-death signal: weedpy/procs.py) with the admin/public listening sockets, its end of a
control socketpair (weedpy/serve/control.py) and any extra descriptors (the shared block)
inherited. The handshake: the leader sends `{"op": "init", ...}` (the worker's number, the
descriptors and what the mode adds); the worker builds its server and answers `{"ready": true}`
without accepting yet; if a state change was broadcast meanwhile the leader sends `resync`; then
`serve`, and only then does the worker accept connections. From then on the leader's requests
(`broadcast`) are acknowledged by every live worker in order. A worker that does not acknowledge
within `ACK_TIMEOUT` is killed: it must not serve from a state the leader has moved past; it is
started again from the current one.

A worker may also ask the leader something (`{"call": n, ...}`, answered `{"reply": n, ...}` by
`on_call`): the admin API of the route table, which only the leader can change (it then
broadcasts the new table to every worker, the asking one included, before it answers). One
reader task per worker sorts what arrives into acknowledgements and calls.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import trio

from weedpy.logs import get_logger
from weedpy.procs import ChildProcess
from weedpy.serve.control import ControlChannel, ControlClosed
from weedpy.serve.spread import ConnectionCounts

__all__ = ["WorkerPool", "ACK_TIMEOUT", "CONTROL_FD_ENV"]

log = get_logger("serve.workers")

CONTROL_FD_ENV = "WEEDPY_CONTROL_FD"
ACK_TIMEOUT = 30.0  # a worker applies a state change in this time or is replaced
READY_TIMEOUT = 120.0  # opening every volume may take a while
STOP_TIMEOUT = 10.0
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0


@dataclasses.dataclass(eq=False)
class _Worker:
    number: int
    proc: ChildProcess
    channel: ControlChannel
    ready: bool = False
    seq: int = 0
    lock: trio.Lock = dataclasses.field(default_factory=trio.Lock)  # one request at a time
    acks: dict[int, _Waiter] = dataclasses.field(default_factory=dict)  # seq -> who waits for its ack
    closed: str | None = None  # why its channel ended (the reader saw it)


class _Waiter:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: dict[str, Any] | None = None


class WorkerPool:
    """Workers 1..count-1 beside the leader (number 0). `init(number)` builds each one's init
    message from the current state, so a restarted worker starts from what the leader has now."""

    def __init__(
        self, count: int, sockets: Mapping[str, socket.socket], init: Callable[[int], dict[str, Any]],
        extra_fds: Sequence[int] = (), spread: ConnectionCounts | None = None,
    ) -> None:
        self.count = count
        self._sockets = dict(sockets)
        self._init = init
        self._extra_fds = tuple(extra_fds) + ((spread.fd,) if spread is not None else ())
        self._spread = spread  # every process's open connections (weedpy/serve/spread.py)
        self._workers: dict[int, _Worker] = {}
        self._epoch = 0  # broadcasts so far: a worker that started before one must resync
        self._stopping = False
        self.restarts = 0
        # Answers a worker's call (`{"call": n, "op": ...}`); returns the reply's fields.
        self.on_call: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None

    @property
    def live(self) -> list[_Worker]:
        return [w for w in self._workers.values() if w.ready and w.proc.returncode is None]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every worker and keep it running; `started` once each served (or failed) once."""
        async with trio.open_nursery() as nursery:
            starts = [trio.Event() for _ in range(1, self.count)]
            for number, started in zip(range(1, self.count), starts):
                nursery.start_soon(self._keep, number, started)
            with trio.move_on_after(READY_TIMEOUT):
                for started in starts:
                    await started.wait()
            task_status.started()

    async def _keep(self, number: int, first: trio.Event) -> None:
        backoff = BACKOFF_FIRST
        while not self._stopping:
            started_at = trio.current_time()
            try:
                await self._run_one(number, first)
            except (OSError, ControlClosed, trio.TooSlowError) as exc:
                log.error("worker failed", worker=number, error=str(exc))
            first.set()
            if self._stopping:
                return
            if trio.current_time() - started_at > 60:
                backoff = BACKOFF_FIRST
            await trio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            self.restarts += 1
            log.warning("restarting worker", worker=number, restarts=self.restarts)

    async def _run_one(self, number: int, first: trio.Event) -> None:
        leader_end, worker_end = socket.socketpair()
        fds = {kind: s.fileno() for kind, s in self._sockets.items()}
        try:
            proc = ChildProcess(
                [sys.executable, "-m", "weedpy.worker"], {**os.environ, CONTROL_FD_ENV: str(worker_end.fileno())},
                pass_fds=(worker_end.fileno(), *fds.values(), *self._extra_fds), self_armed=True,
            )
        finally:
            worker_end.close()
        worker = _Worker(number, proc, ControlChannel(leader_end))
        self._workers[number] = worker
        try:
            epoch = self._epoch
            spread = {"spread_fd": self._spread.fd, "processes": self.count} if self._spread is not None else {}
            await worker.channel.send({"op": "init", "worker": number, "fds": fds, **spread, **self._init(number)})
            with trio.fail_after(READY_TIMEOUT):
                reply = await worker.channel.receive()
            if not reply.get("ready"):
                raise ControlClosed(f"worker {number} did not start: {reply.get('error', reply)}")
            failed: Exception | None = None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, worker, nursery)
                try:
                    while epoch != self._epoch:  # it built its view before a change: bring it up to date
                        epoch = self._epoch
                        await self._request(worker, {"op": "resync", **self._init(number)}, starting=True)
                    worker.ready = True  # from now on every broadcast reaches it
                    await self._request(worker, {"op": "serve"})
                    log.info("worker ready", worker=number, pid=proc.pid)
                    first.set()
                    rc = await proc.wait()
                    if not self._stopping:
                        log.error("worker exited", worker=number, pid=proc.pid, returncode=rc)
                except (OSError, ControlClosed, trio.TooSlowError) as exc:
                    failed = exc  # raised outside the nursery, as itself (not in an exception group)
                nursery.cancel_scope.cancel()
            if failed is not None:
                raise failed
        finally:
            worker.ready = False
            if self._spread is not None:
                self._spread.gone(number)  # nobody leaves connections to it until its successor serves
            self._workers.pop(number, None)
            await worker.channel.aclose()
            if proc.returncode is None:
                await proc.terminate(STOP_TIMEOUT)

    async def _read(self, worker: _Worker, nursery: trio.Nursery) -> None:
        """Everything the worker sends after it is ready: acknowledgements, and calls to answer."""
        try:
            while True:
                msg = await worker.channel.receive()
                if "call" in msg:
                    nursery.start_soon(self._answer, worker, msg)
                    continue
                waiter = worker.acks.pop(msg.get("ack"), None) if isinstance(msg.get("ack"), int) else None
                if waiter is None:
                    raise ControlClosed(f"unexpected message {msg!r}")
                waiter.reply = msg
                waiter.event.set()
        except (ControlClosed, ValueError) as exc:
            worker.closed = str(exc)
        finally:
            worker.closed = worker.closed or "the worker is gone"
            for waiter in worker.acks.values():
                waiter.event.set()  # no reply: the request fails at once
            worker.acks.clear()

    async def _answer(self, worker: _Worker, msg: dict[str, Any]) -> None:
        try:
            if self.on_call is None:
                raise ValueError("the leader answers no calls")
            reply = await self.on_call(msg)
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            log.exception("cannot answer a worker's call", worker=worker.number, op=msg.get("op"))
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            await worker.channel.send({**reply, "reply": msg["call"]})
        except ControlClosed:
            pass

    async def broadcast(self, msg: dict[str, Any]) -> None:
        """Send `msg` to every live worker and wait until each has applied it (or was replaced)."""
        self._epoch += 1
        async with trio.open_nursery() as nursery:
            for worker in self.live:
                nursery.start_soon(self._request, worker, msg)

    async def ask(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        """Send `msg` to every live worker and return their answers (a question, not a state
        change: a worker starting meanwhile need not resync). A worker that does not answer within
        `ACK_TIMEOUT` is replaced, as for a broadcast, and left out."""
        replies: list[dict[str, Any]] = []

        async def one(worker: _Worker) -> None:
            reply = await self._request(worker, msg)
            if reply is not None:
                replies.append(reply)

        async with trio.open_nursery() as nursery:
            for worker in self.live:
                nursery.start_soon(one, worker)
        return replies

    async def _request(self, worker: _Worker, msg: dict[str, Any], starting: bool = False) -> dict[str, Any] | None:
        """The worker's answer, or None when it failed to give one (and is being replaced)."""
        try:
            async with worker.lock:
                if worker.closed is not None:
                    raise ControlClosed(worker.closed)
                worker.seq += 1
                seq = worker.seq
                waiter = worker.acks[seq] = _Waiter()
                await worker.channel.send({**msg, "seq": seq})
                with trio.fail_after(ACK_TIMEOUT):
                    await waiter.event.wait()
            reply = waiter.reply
            if reply is None:
                raise ControlClosed(worker.closed or "the control channel closed")
            if reply.get("error"):
                raise ControlClosed(f"bad answer {reply!r}")
            return reply
        except (ControlClosed, trio.TooSlowError) as exc:
            if starting:
                raise ControlClosed(f"worker {worker.number} did not resync: {exc}") from exc
            if worker.proc.returncode is None and not self._stopping:
                log.error("worker did not apply a state change: replacing it", worker=worker.number,
                          op=msg.get("op"), error=str(exc))
                worker.proc.kill()
            return None

    async def stop(self) -> None:
        """Tell every worker to end its connections and exit; kill the ones that do not."""
        self._stopping = True
        await self.broadcast({"op": "stop"})
        with trio.move_on_after(STOP_TIMEOUT):
            for worker in list(self._workers.values()):
                await worker.proc.wait()
        for worker in list(self._workers.values()):
            await worker.proc.terminate(0)
