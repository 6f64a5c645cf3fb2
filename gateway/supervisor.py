"""Start, watch and restart the managed Go `weed volume` backend.

The backend runs in its own session (a terminal's Ctrl-C reaches only the gateway, which then
stops it in order) and, on Linux, with a parent-death signal so it never outlives the gateway.
Its output is re-logged line by line with `source=backend`. `current()` is None whenever the
backend is not ready, which the relays turn into an immediate 503 / UNAVAILABLE.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Mapping, Sequence

import trio

from gateway.backend import BackendEndpoints
from gateway.backend_args import BackendPorts
from gateway.go_fatal import GlogFatal, LineKind
from weedpy.logs import get_logger
from weedpy.ports import free_port
from weedpy.procs import ChildProcess

__all__ = ["Supervisor", "BackendStartError"]

log = get_logger("gateway.supervisor")


class BackendStartError(RuntimeError):
    """The backend could not be brought up; the message carries its last output lines, `fatal`
    the message of Go's fatal line when it exited through glog.Fatal, `returncode` its status."""

    def __init__(self, message: str, fatal: str | None = None, returncode: int | None = None) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.returncode = returncode


ArgvBuilder = Callable[[BackendPorts], Sequence[str]]
# Told where the backend listens whenever that changes (None: not running), so the gateway's
# worker processes follow the backend's restarts.
EndpointsListener = Callable[[BackendEndpoints | None], Awaitable[None]]


class Supervisor:
    """Keeps one backend process running; `run()` is a long-lived task."""

    def __init__(
        self,
        argv_for: ArgvBuilder,
        *,
        split_public: bool,
        env: Mapping[str, str],
        ready_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        max_backoff: float = 10.0,
        tail_lines: int = 40,
        on_change: EndpointsListener | None = None,
        before_start: Callable[[], object] | None = None,
        metrics: bool = False,
    ) -> None:
        self._argv_for = argv_for
        self._split_public = split_public
        self._env = dict(env)
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        self._max_backoff = max_backoff
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._endpoints: BackendEndpoints | None = None
        self._proc: ChildProcess | None = None
        self._stopping = False
        self.restarts = 0
        self.on_change = on_change
        self._before_start = before_start  # blocking, run in a thread before each start
        self._metrics = metrics  # give the backend a private -metricsPort (the front scrapes it)

    def current(self) -> BackendEndpoints | None:
        return self._endpoints

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    def last_output(self) -> str:
        return "\n".join(self._tail)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the backend, report readiness once, then restart it with backoff whenever it dies."""
        backoff = 0.5
        first = True
        while not self._stopping:
            started_at = trio.current_time()
            try:
                await self._start_and_wait_ready()
            except BackendStartError:
                if first:
                    raise
                log.error("backend restart failed", source="gateway", backoff_s=backoff, last_output=self.last_output())
            else:
                if first:
                    task_status.started()
                    first = False
                assert self._proc is not None
                rc = await self._proc.wait()
                await self._publish(None)
                if self._stopping:
                    return
                log.error("backend exited", source="gateway", returncode=rc, last_output=self.last_output())
            if trio.current_time() - started_at > 60:
                backoff = 0.5
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)
            self.restarts += 1
            log.warning("restarting backend", source="gateway", restarts=self.restarts)

    async def _start_and_wait_ready(self) -> None:
        ports = BackendPorts(
            http=free_port(),
            grpc=free_port(),
            public=free_port() if self._split_public else None,
            metrics=free_port() if self._metrics else None,
        )
        argv = list(self._argv_for(ports))
        if self._before_start is not None:
            try:
                await trio.to_thread.run_sync(self._before_start)
            except Exception as exc:  # the backend starts anyway: it loads what it can, as without it
                log.error("before starting the backend", source="gateway", error=str(exc))
        log.info("starting backend", source="gateway", argv=argv)
        self._tail.clear()
        try:
            proc = ChildProcess(argv, self._env, capture_output=True)
        except OSError as exc:
            raise BackendStartError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        self._proc = proc
        fatal = GlogFatal()
        pumped = trio.Event()
        trio.lowlevel.spawn_system_task(self._pump_output, proc, fatal, pumped)
        endpoints = BackendEndpoints(
            http=("127.0.0.1", ports.http),
            grpc=("127.0.0.1", ports.grpc),
            public=("127.0.0.1", ports.public) if ports.public else None,
            metrics=("127.0.0.1", ports.metrics) if ports.metrics else None,
        )
        with trio.move_on_after(self._ready_timeout) as timeout:
            while True:
                if proc.returncode is not None:
                    with trio.move_on_after(2):
                        await pumped.wait()  # let the pump catch the last lines
                    raise BackendStartError(
                        f"backend exited with code {proc.returncode} before it was ready:\n{self.last_output()}",
                        fatal=fatal.message, returncode=proc.returncode,
                    )
                if await _http_ok(endpoints.http) and await _tcp_ok(endpoints.grpc):
                    break
                await trio.sleep(0.05)
        if timeout.cancelled_caught:
            await self._terminate(proc)
            raise BackendStartError(
                f"backend not ready after {self._ready_timeout:.0f}s:\n{self.last_output()}"
            )
        await self._publish(endpoints)
        log.info("backend ready", source="gateway", pid=proc.pid, http=ports.http, grpc=ports.grpc, public=ports.public)

    async def _pump_output(self, proc: ChildProcess, fatal: GlogFatal, done: trio.Event) -> None:
        assert proc.stdout is not None
        buf = b""
        try:
            async for data in proc.stdout:
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    self._output_line(proc, fatal, line.decode(errors="replace").rstrip())
        except (trio.ClosedResourceError, trio.BrokenResourceError, OSError):
            pass
        self._output_line(proc, fatal, buf.decode(errors="replace").rstrip())
        await proc.stdout.aclose()
        done.set()

    def _output_line(self, proc: ChildProcess, fatal: GlogFatal, text: str) -> None:
        """Re-log one line of Go's output; Go's fatal line as an error, the stack dump after it at debug."""
        if not text:
            return
        kind = fatal.feed(text)
        if kind is LineKind.DUMP:
            log.debug("backend output", source="backend", pid=proc.pid, line=text)
            return
        self._tail.append(text)
        if kind is LineKind.FATAL:
            log.error("backend fatal", source="backend", pid=proc.pid, error=fatal.message)
        else:
            log.info("backend output", source="backend", pid=proc.pid, line=text)

    async def _publish(self, endpoints: BackendEndpoints | None) -> None:
        self._endpoints = endpoints
        if self.on_change is not None:
            await self.on_change(endpoints)

    async def stop(self) -> None:
        """Stop for good: SIGTERM, then SIGKILL after the stop timeout; no restart."""
        self._stopping = True
        self._endpoints = None
        if self._proc is not None and self._proc.returncode is None:
            await self._terminate(self._proc)

    async def _terminate(self, proc: ChildProcess) -> None:
        returncode = await proc.terminate(self._stop_timeout)
        log.info("backend stopped", source="gateway", pid=proc.pid, returncode=returncode)


async def _tcp_ok(addr: tuple[str, int]) -> bool:
    try:
        with trio.move_on_after(1):
            stream = await trio.open_tcp_stream(*addr)
            await stream.aclose()
            return True
    except OSError:
        pass
    return False


async def _http_ok(addr: tuple[str, int]) -> bool:
    """GET /status answers below 500 (what the harness waits for on a Go server)."""
    try:
        with trio.move_on_after(2):
            stream = await trio.open_tcp_stream(*addr)
            try:
                await stream.send_all(b"GET /status HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n")
                head = await stream.receive_some(64)
            finally:
                await stream.aclose()
            parts = head.split(b" ", 2)
            return len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < 500
    except (OSError, trio.BrokenResourceError):
        pass
    return False

