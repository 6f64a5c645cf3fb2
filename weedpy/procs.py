"""Child processes that never outlive us: the Go backend (proxy mode) and the serving workers.

Linux delivers PR_SET_PDEATHSIG when the *thread* that forked the child exits; trio's
open_process forks from a worker thread that idles out after seconds, which would kill the
child. `ChildProcess` spawns on the thread that runs the event loop, which ties the signal to
the parent's own lifetime, and waits on a pidfd from a trio system task.

The signal is armed in the child between fork and exec, which makes the spawn a full fork of
the parent (its page tables copied, then the event loop blocked until the child has run Python
code and exec'd: 3-10 ms for a serving process). A child that runs weedpy arms it itself instead
(`self_armed`: `die_with_parent` at its start, with the parent's pid in `PARENT_PID_ENV`), and the
spawn takes the kernel's vfork path, a fraction of a millisecond.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, MutableMapping, Sequence

import trio

__all__ = ["ChildProcess", "PARENT_PID_ENV", "die_with_parent"]

PARENT_PID_ENV = "WEEDPY_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def _arm(parent: int) -> None:
    """SIGTERM when the parent dies; exit now if it already has (the signal came too late)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass
    if os.getppid() != parent:
        os._exit(1)


def _die_with(parent: int) -> Callable[[], None]:
    return lambda: _arm(parent)  # runs in the child between fork and exec


def die_with_parent(environ: MutableMapping[str, str]) -> None:
    """In a child spawned `self_armed`: arm the parent-death signal (taking the pid out of
    `environ`, so this process's own children do not see it)."""
    parent = environ.pop(PARENT_PID_ENV, None)
    if parent is not None:
        _arm(int(parent))


class ChildProcess:
    """A process in its own session (a terminal's Ctrl-C reaches only the parent, which stops it
    in order), sent SIGTERM by the kernel if the parent dies. `capture_output` pipes stdout and stderr
    into `self.stdout` (a trio stream); otherwise both are inherited."""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], *, capture_output: bool = False, pass_fds: Sequence[int] = (),
        self_armed: bool = False,
    ) -> None:
        pipe = subprocess.PIPE if capture_output else None
        env = {**env, PARENT_PID_ENV: str(os.getpid())} if self_armed else dict(env)
        self.popen = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=pipe, stderr=subprocess.STDOUT if capture_output else None,
            env=env, start_new_session=True, preexec_fn=None if self_armed else _die_with(os.getpid()),
            pass_fds=tuple(pass_fds),
        )
        self.pid = self.popen.pid
        self.stdout: trio.lowlevel.FdStream | None = None
        if capture_output:
            assert self.popen.stdout is not None
            self.stdout = trio.lowlevel.FdStream(os.dup(self.popen.stdout.fileno()))
            self.popen.stdout.close()
        self._pidfd = os.pidfd_open(self.pid)
        self._exited = trio.Event()
        trio.lowlevel.spawn_system_task(self._reap)

    async def _reap(self) -> None:
        """The one task that waits on the pidfd; everyone else waits on the event."""
        try:
            if self.popen.poll() is None:
                await trio.lowlevel.wait_readable(self._pidfd)
            self.popen.wait()
        finally:
            os.close(self._pidfd)
            self._exited.set()

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    async def wait(self) -> int:
        await self._exited.wait()
        return self.popen.wait()

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def terminate(self, timeout: float) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; the exit code (shielded from cancellation)."""
        with trio.CancelScope(shield=True):
            if self.returncode is None:
                self.send_signal(signal.SIGTERM)
                with trio.move_on_after(timeout):
                    await self.wait()
                if self.returncode is None:
                    self.kill()
            return await self.wait()
