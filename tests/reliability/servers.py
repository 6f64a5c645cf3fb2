"""Servers to crash: weedpy in native or proxy mode on one data directory, killed with SIGKILL
(every process of the server, or only the Go backend) and started again on the same files; and
the checks after the last crash (`weedpy verify`, Go's `weed volume` on the files)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx

from proto import volume_server_pb2 as vs
from tests.native_core.support import call
from tests.reliability.ledger import Ledger, body, fid
from tests.support.process_tree import alive, descendants
from tests.support.procs import MasterProc, VolumeProc, start_go_volume, wait_http
from tests.support.weedpy_proc import start_weedpy_volume

__all__ = ["Crashable", "descendants", "kill_all", "go_loads_writable", "weedpy_verify", "log_counts"]


def kill_all(pids: Iterable[int], timeout: float = 20) -> None:
    pids = list(pids)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes {[p for p in pids if alive(p)]} survived SIGKILL")
        time.sleep(0.02)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@dataclasses.dataclass
class Crashable:
    """One weedpy server (`mode` native or proxy, `-workers`) on `data_dir`, restartable."""

    workdir: Path
    master: MasterProc
    mode: str
    workers: int | None = None  # None: the default (one per core)
    data_dir: Path = dataclasses.field(init=False)
    proc: VolumeProc | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        assert self.proc is not None
        return self.proc.url

    def start(self) -> None:
        if self.proc is not None and self.proc.proc.popen.poll() is None:
            self.kill()  # never lose a running server by starting another over it
        extra = [f"-mode={self.mode}", "-preStopSeconds=0"]
        if self.workers is not None:
            extra.append(f"-workers={self.workers}")
        self.starts += 1
        self.proc = start_weedpy_volume(self.workdir, self.master, name=f"{self.mode}-{self.starts}", extra=extra,
                                        data_dir=self.data_dir)

    def allocate(self, vids: Sequence[int]) -> None:
        assert self.proc is not None
        for vid in vids:
            out = call(self.proc.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3),
                       vs.AllocateVolumeResponse)
            assert out.ok, out

    def kill(self) -> None:
        """SIGKILL every process of the server at once (leader, workers, Go backend)."""
        assert self.proc is not None
        leader = self.proc.proc.pid
        kill_all([*descendants(leader), leader])
        self.proc.proc.popen.wait(10)

    def backend_pid(self) -> int:
        assert self.proc is not None
        for p in descendants(self.proc.proc.pid):
            argv = _cmdline(p).split(b"\0")
            if argv[0].endswith(b"weed") and b"volume" in argv[1:3] and alive(p):
                return p
        raise AssertionError("no Go backend found")

    def kill_backend(self) -> int:
        """SIGKILL the Go backend alone (proxy mode); the server starts another."""
        pid = self.backend_pid()
        kill_all([pid])
        return pid

    def wait_backend_back(self, old: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid = self.backend_pid()
            except AssertionError:
                pid = None
            if pid is not None and pid != old:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise AssertionError("the Go backend did not come back")

    def stop(self) -> None:
        if self.proc is not None:
            rc = self.proc.stop()  # kills what outlives the leader, and the whole tree after 15 s
            self.proc = None
            assert rc in (0, -2, 130, 1), f"weedpy exited {rc}"

    def close(self) -> None:
        """Teardown on every path: SIGKILL whatever of the server is still running."""
        if self.proc is not None:
            proc, self.proc = self.proc, None
            if proc.proc.popen.poll() is None:
                kill_all([*descendants(proc.proc.pid), proc.proc.pid])
            proc.proc.stop()  # reaps the leader; kills any process that outlived it


def log_counts(workdir: Path) -> dict[str, int]:
    """Crash recoveries the servers logged: weedpy's tail repairs, Go's failed integrity checks."""
    text = "".join(p.read_text(errors="replace") for p in (workdir / "logs").glob("*.log"))
    return {"tails_repaired": text.count("recovering from a crash"),
            "go_integrity_failures": text.count("volumeDataIntegrityChecking failed")}


def weedpy_verify(data_dir: Path) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-m", "weedpy.cli", "verify", str(data_dir)], capture_output=True, text=True,
                         timeout=600)
    if out.returncode == 2 and "No module" in out.stderr:  # pragma: no cover
        raise AssertionError(out.stderr)
    return out.returncode, out.stdout + out.stderr


def go_loads_writable(workdir: Path, master: MasterProc, data_dir: Path, led: Ledger, vids: Sequence[int]) -> dict:
    """Go's `weed volume` on the files: every volume listed and not read-only, every key as the
    ledger says (byte for byte, or 404), and one more write to each volume accepted."""
    go = start_go_volume(workdir, master, data_dir=data_dir, name="go-check")
    try:
        wait_http(f"{go.url}/status", proc=go.proc)
        status = json.loads(httpx.get(f"{go.url}/status", timeout=10).text)
        vols = {v["Id"]: v for v in status.get("Volumes") or []}
        problems = []
        for vid in vids:
            if vid not in vols:
                problems.append(f"Go does not list volume {vid}")
            elif vols[vid].get("ReadOnly"):
                problems.append(f"Go loads volume {vid} read-only")
        checked = 0
        with httpx.Client(timeout=30) as client:
            for key, st in sorted(led.keys.items()):
                r = client.get(f"{go.url}/{fid(st.vid, key)}")
                ok = (r.status_code == 200 and r.content == body(key, st.acked)) if st.acked.live else r.status_code == 404
                if not ok:
                    problems.append(f"Go reads key {key} as {r.status_code}/{len(r.content)} B, ledger {st.acked}")
                checked += 1
            for vid in vids:
                r = client.post(f"{go.url}/{vid},{0xFFFFFF:x}{0x1234:08x}", content=b"go writes",
                                headers={"Content-Type": "application/octet-stream"})
                if r.status_code != 201:
                    problems.append(f"Go refuses a write to volume {vid}: {r.status_code} {r.text[:200]}")
        return {"go_problems": problems, "go_keys_checked": checked}
    finally:
        go.stop()
