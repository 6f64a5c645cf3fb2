"""Per-volume ownership in mixed mode, on real processes (a real master, the real Go backend):
a volume moves go -> native -> go -> native under concurrent writes and reads with every
acknowledged write readable afterwards from either side, no 5xx, the master listing the volume
throughout and never two writers of its files; a SIGKILL at each step of a move leaves one
owner after a restart, the journal gone and `weedpy verify` passing; a Go restarted by the
supervisor while native owns a volume never opens its files; calls naming volumes of both sides
(BatchDelete) and new volumes on native (AllocateVolume)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from native.storage import Needle, Volume
from native.storage.ownership import JOURNAL_NAME, NATIVE_FOLDER, STEPS
from proto import volume_server_pb2 as vs
from tests.native_core.support import allocate_volume, call, move_volume, start_mixed
from tests.support.logs import log_events
from tests.support.waiting import wait_until
from tests.support.process_tree import alive, child_with, children
from tests.support.procs import MasterProc, VolumeProc, start_master
from tests.support.weedpy_proc import start_weedpy_volume, weedpy_executable
from weedpy.volume_moves import MOVE_PAUSE_ENV

pytestmark = pytest.mark.slow

VID = 7
OTHER = 8  # stays with Go


@pytest.fixture()
def master(tmp_path: Path):
    m = start_master(tmp_path / "m")
    yield m
    m.stop()


def _fid(vid: int, key: int) -> str:
    return f"{vid},{key:x}{0x2000 + key:08x}"


def _owners(server: VolumeProc) -> list[int]:
    return httpx.get(f"{server.url}/weedpy/volumes", timeout=10).json()["native"]


def _master_lists(master: MasterProc, vid: int, url: str) -> bool:
    try:
        r = httpx.get(f"{master.url}/dir/lookup", params={"volumeId": str(vid)}, timeout=5)
        return any(loc.get("url") == url for loc in r.json().get("locations") or [])
    except (httpx.HTTPError, ValueError):
        return False


def _volume_fds(pid: int, vid: int) -> list[tuple[str, bool]]:
    """(path, opened for writing) of every descriptor process `pid` has on `vid`'s .dat or .idx."""
    names = {f"{vid}.dat", f"{vid}.idx"}
    out = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if os.path.basename(target) not in names:
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        m = re.search(r"flags:\s*([0-7]+)", info)
        flags = int(m.group(1), 8) if m else 0
        out.append((target, bool(flags & (os.O_WRONLY | os.O_RDWR))))
    return out


def _volume_files(data: Path, vid: int) -> dict[str, list[str]]:
    return {where: sorted(p.name for p in folder.glob(f"*{vid}.*") if p.name.split(".")[0].split("_")[-1] == str(vid))
            for where, folder in (("go", data), ("native", data / NATIVE_FOLDER))}


def _verify(data: Path) -> subprocess.CompletedProcess:
    weedpy = str(Path(weedpy_executable()).with_name("weedpy"))
    return subprocess.run([weedpy, "verify", str(data)], capture_output=True, text=True, timeout=120)


class Watch:
    """Load on one volume (writers that read back what they wrote) plus two pollers: the master's
    /dir/lookup for the volume, and every weedpy and Go process's descriptors on its files."""

    def __init__(self, server: VolumeProc, master: MasterProc, threads: int = 4, fresh: bool = False) -> None:
        self.server = server
        # each request on a new connection: whichever process accepts it serves it
        self.headers = {"Connection": "close"} if fresh else {}
        self.master = master
        self.failures: list[str] = []
        self.acked: dict[str, bytes] = {}
        self.not_listed: list[float] = []
        self.two_writers: list[str] = []
        self.writers_seen: set[str] = set()
        self.polls = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._load, args=(i,), daemon=True) for i in range(threads)]
        self._threads += [threading.Thread(target=self._lookups, daemon=True),
                          threading.Thread(target=self._writers, daemon=True)]

    def __enter__(self) -> Watch:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _load(self, n: int) -> None:
        rng = random.Random(n)
        mine: list[str] = []
        with httpx.Client(timeout=60, headers=self.headers) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    if i % 2 or not mine:
                        fid = _fid(VID, (n + 1) << 24 | i)
                        body = f"thread {n} write {i} ".encode() * rng.randint(1, 40)
                        r = client.put(f"{self.server.url}/{fid}", content=body)
                        if r.status_code != 201:
                            self.failures.append(f"PUT {fid}: {r.status_code} {r.text[:200]}")
                            continue
                        with self._lock:
                            self.acked[fid] = body
                        mine.append(fid)
                    else:
                        fid = rng.choice(mine)
                        r = client.get(f"{self.server.url}/{fid}")
                        if r.status_code != 200 or r.content != self.acked[fid]:
                            self.failures.append(f"GET {fid}: {r.status_code} {r.content[:100]!r}")
                except Exception as exc:  # noqa: BLE001 - every failed request counts
                    self.failures.append(f"{type(exc).__name__}: {exc}")

    def _lookups(self) -> None:
        url = f"127.0.0.1:{self.server.port}"
        while not self._stop.is_set():
            if not _master_lists(self.master, VID, url):
                self.not_listed.append(time.time())
            time.sleep(0.05)

    def _writers(self) -> None:
        pid = self.server.proc.pid
        while not self._stop.is_set():
            pids = [pid] + [c for c in children(pid) if b"volume" in _cmdline(c)]
            writing = {p: [path for path, w in _volume_fds(p, VID) if w] for p in pids}
            holders = [p for p, paths in writing.items() if paths]
            for p in holders:
                self.writers_seen.add("weedpy" if p == pid else "go")
            if len(holders) > 1:
                self.two_writers.append(f"{writing}")
            self.polls += 1
            time.sleep(0.01)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_volume_moves_go_native_go_native_under_load(tmp_path: Path, master: MasterProc, workers: int) -> None:
    """With -workers=2 a worker relays a Go volume's requests to Go itself and hands the leader
    those of the volume while it moves or native owns it; the move waits for the ones it relayed."""
    data = tmp_path / "data"
    server = start_mixed(tmp_path, master, data, workers=workers)
    try:
        allocate_volume(server, VID)
        allocate_volume(server, OTHER)
        url = f"127.0.0.1:{server.port}"
        wait_until(lambda: _master_lists(master, VID, url), what="the master to list the volume")
        moves = []
        with Watch(server, master, fresh=workers > 1) as watch:
            time.sleep(1.5)
            moves.append(move_volume(server, VID, "native"))
            assert _owners(server) == [VID] and _volume_files(data, VID)["go"] == []
            time.sleep(1.5)
            cli = subprocess.run([str(Path(weedpy_executable()).with_name("weedpy")), "cutover", "move", str(VID),
                                  "-to=go", f"-server={url}"], capture_output=True, text=True, timeout=120)
            assert cli.returncode == 0 and f"volume {VID}: native -> go (moved" in cli.stdout, cli
            assert _owners(server) == []
            time.sleep(1.5)
            moves.append(move_volume(server, VID, "native"))
            time.sleep(1.5)
        assert not watch.failures, watch.failures[:10]
        assert len(watch.acked) > 50, len(watch.acked)
        assert not watch.not_listed, f"the master did not list the volume {len(watch.not_listed)} times"
        assert not watch.two_writers, watch.two_writers[:3]
        assert watch.writers_seen == {"weedpy", "go"} and watch.polls > 100, (watch.writers_seen, watch.polls)

        def read_all(side: str) -> None:
            with httpx.Client(timeout=30) as client:
                bad = [fid for fid, body in watch.acked.items()
                       if (r := client.get(f"{server.url}/{fid}")).status_code != 200 or r.content != body]
            assert not bad, f"{len(bad)} acknowledged writes not readable from {side}: {bad[:5]}"

        read_all("native")
        assert _volume_files(data, VID)["go"] == [] and f"{VID}.dat" in _volume_files(data, VID)["native"]
        move_volume(server, VID, "go")
        read_all("go")
        assert _volume_files(data, VID)["native"] == []

        status = subprocess.run([str(Path(weedpy_executable()).with_name("weedpy")), "cutover", "status",
                                 f"-server={url}"], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0 and "volumes owned by native: none" in status.stdout, status.stdout
        assert f"volume {VID} go -> native by api 127.0.0.1: moved" in status.stdout, status.stdout
        events = log_events(server.proc.log_path)
        writes = [e for e in events if e.get("event") == "http" and e.get("route") == "admin.write"
                  and e.get("path", "").startswith(f"/{VID},")]
        if workers == 1:
            assert {e["target"] for e in writes} == {"go", "native"}
        else:  # a worker's front logs the route's target; the leader's hop line the same
            assert {bool(e.get("worker")) for e in writes} == {True, False}  # the leader is worker 0
            assert any(e.get("event") == "hop" and e.get("path", "").startswith(f"/{VID},") for e in events)
        assert all(m["held_ms"] > 0 and m["files"] >= 3 for m in moves), moves
    finally:
        server.stop()
    out = _verify(data)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not (data / JOURNAL_NAME).exists()


KILL_CASES = [(step, "native") for step in STEPS] + [(step, "go") for step in ("unmount", "rename", "mount", "done")]


@pytest.mark.parametrize("step, to", KILL_CASES, ids=[f"{s}-to-{t}" for s, t in KILL_CASES])
def test_sigkill_at_each_step_of_a_move_leaves_one_owner(tmp_path: Path, master: MasterProc, step: str, to: str) -> None:
    data = tmp_path / "data"
    server = start_mixed(tmp_path, master, data, env={MOVE_PAUSE_ENV: f"{step}:120:{to}"})
    files = {_fid(VID, k): f"file {k} ".encode() * k for k in range(1, 21)}
    frm = "go" if to == "native" else "native"
    try:
        allocate_volume(server, VID)
        for fid, body in files.items():
            assert httpx.put(f"{server.url}/{fid}", content=body, timeout=30).status_code == 201
        if frm == "native":  # the pause is for moves to go only
            move_volume(server, VID, "native")
        def move_until_killed() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                httpx.post(f"{server.url}/weedpy/volumes/{VID}/move?to={to}", timeout=300)

        threading.Thread(target=move_until_killed, daemon=True).start()
        wait_until(lambda: any(e.get("event") == "TEST-ONLY: the move pauses here" and e.get("step") == step
                              for e in log_events(server.proc.log_path)), what=f"the move to pause at {step}")
        go = child_with(server.proc.pid, b"volume")
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.popen.wait(30)
        wait_until(lambda: not alive(go), what="the Go backend to die with the gateway")
    finally:
        server.stop()
    journal = data / JOURNAL_NAME
    assert journal.exists()  # the crash left it: the next start resolves it
    server = start_mixed(tmp_path, master, data)
    try:
        owner = to if step == "done" else frm
        assert not journal.exists()
        where = _volume_files(data, VID)
        assert where["go" if owner == "native" else "native"] == [] and f"{VID}.dat" in where[owner], where
        assert _owners(server) == ([VID] if owner == "native" else [])
        with httpx.Client(timeout=30) as client:
            for fid, body in files.items():
                r = client.get(f"{server.url}/{fid}")
                assert r.status_code == 200 and r.content == body, (fid, r.status_code)
            r = client.put(f"{server.url}/{_fid(VID, 99)}", content=b"after the crash")
            assert r.status_code == 201, r.text
        wait_until(lambda: _master_lists(master, VID, f"127.0.0.1:{server.port}"), what="the master to list it")
        events = log_events(server.proc.log_path)
        resolved = [e for e in events if e.get("event") == "interrupted volume move resolved"]
        assert [(e["volume"], e["outcome"]) for e in resolved] == [(VID, "completed" if step == "done" else "undone")]
    finally:
        server.stop()
    out = _verify(data)
    assert out.returncode == 0 and "1 volume checked, 0 corrupt" in out.stdout, out.stdout + out.stderr


def test_go_restarted_while_native_owns_a_volume_never_opens_it(tmp_path: Path, master: MasterProc) -> None:
    data = tmp_path / "data"
    server = start_mixed(tmp_path, master, data)
    try:
        allocate_volume(server, VID)
        allocate_volume(server, OTHER)
        assert httpx.put(f"{server.url}/{_fid(VID, 1)}", content=b"one", timeout=30).status_code == 201
        move_volume(server, VID, "native")
        go = child_with(server.proc.pid, b"volume")
        assert _volume_fds(go, VID) == []
        os.kill(go, signal.SIGKILL)
        new_go = child_with(server.proc.pid, b"volume", timeout=60, exclude=frozenset({go}))
        seen: list[tuple[str, bool]] = []
        # Go restarted: it serves its own volume again, and never opens the native one's files
        deadline = time.monotonic() + 60
        while not call(server.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=OTHER),
                       vs.VolumeStatusResponse).ok:
            seen += _volume_fds(new_go, VID)
            assert time.monotonic() < deadline, "the restarted Go never served its volume"
            time.sleep(0.02)
        for _ in range(100):
            seen += _volume_fds(new_go, VID)
            time.sleep(0.02)
        assert seen == []
        go_grpc = int(re.search(rb"-port\.grpc=(\d+)", _cmdline(new_go)).group(1))
        direct = call(go_grpc, "VolumeStatus", vs.VolumeStatusRequest(volume_id=VID), vs.VolumeStatusResponse)
        assert not direct.ok, "Go loaded the volume native owns"
        r = httpx.get(f"{server.url}/{_fid(VID, 1)}", timeout=30)
        assert r.status_code == 200 and r.content == b"one"
        assert httpx.put(f"{server.url}/{_fid(VID, 2)}", content=b"two", timeout=30).status_code == 201
        wait_until(lambda: _master_lists(master, VID, f"127.0.0.1:{server.port}"), what="the master to list it again")
    finally:
        server.stop()


def test_batch_delete_across_owners_and_new_volumes_on_native(tmp_path: Path, master: MasterProc) -> None:
    data = tmp_path / "data"
    server = start_mixed(tmp_path, master, data)
    try:
        allocate_volume(server, VID)
        allocate_volume(server, OTHER)
        move_volume(server, VID, "native")
        fids = [_fid(OTHER, 1), _fid(VID, 1), _fid(OTHER, 2), _fid(VID, 2), _fid(VID, 3)]
        for fid in fids:
            assert httpx.put(f"{server.url}/{fid}", content=fid.encode(), timeout=30).status_code == 201
        out = call(server.grpc_port, "BatchDelete", vs.BatchDeleteRequest(file_ids=fids[:4] + ["9,1abcdef01"]),
                   vs.BatchDeleteResponse)
        assert out.ok, out
        assert [r.file_id for r in out.response.results] == fids[:4] + ["9,1abcdef01"]
        assert [r.status for r in out.response.results][:4] == [202] * 4, out.response
        for fid in fids[:4]:
            assert httpx.get(f"{server.url}/{fid}", timeout=30).status_code == 404
        assert httpx.get(f"{server.url}/{fids[4]}", timeout=30).content == fids[4].encode()

        for vid in (12, 13):  # a collection with a volume on each side: DeleteCollection deletes both
            out = call(server.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, collection="c",
                                                                                     version=3), vs.AllocateVolumeResponse)
            assert out.ok, out
        move_volume(server, 12, "native")
        assert httpx.put(f"{server.url}/{_fid(12, 1)}", content=b"c", timeout=30).status_code == 201
        out = call(server.grpc_port, "DeleteCollection", vs.DeleteCollectionRequest(collection="c"),
                   vs.DeleteCollectionResponse)
        assert out.ok, out
        assert not list(data.glob("c_*")) and not list((data / NATIVE_FOLDER).glob("c_*"))
        assert _owners(server) == [VID]

        r = httpx.post(f"{server.url}/weedpy/volumes/new?owner=native", timeout=10)
        assert r.status_code == 200 and r.json()["new_volumes"] == "native"
        allocate_volume(server, 11)
        assert "11.dat" in _volume_files(data, 11)["native"] and _volume_files(data, 11)["go"] == []
        assert _owners(server) == [VID, 11]
        assert httpx.put(f"{server.url}/{_fid(11, 5)}", content=b"new", timeout=30).status_code == 201
        assert httpx.get(f"{server.url}/{_fid(11, 5)}", timeout=30).content == b"new"
        wait_until(lambda: _master_lists(master, 11, f"127.0.0.1:{server.port}"), what="the master to list volume 11")
        refused = httpx.post(f"{server.url}/weedpy/volumes/{OTHER}/move?to=go", timeout=10)
        assert refused.status_code == 409 and "already" in refused.json()["error"]
        missing = httpx.post(f"{server.url}/weedpy/volumes/99/move?to=native", timeout=10)
        assert missing.status_code == 404
    finally:
        server.stop()


def test_native_mode_serves_the_volumes_mixed_mode_left_with_native(tmp_path: Path, master: MasterProc) -> None:
    """Every mode but mixed moves them back to -dir at start, so nothing is lost by leaving mixed mode."""
    data = tmp_path / "data"
    v = Volume.create(data / NATIVE_FOLDER, VID)
    v.write_needle(Needle.create(5, 0x1234, b"left with native"))
    v.close()
    server = start_weedpy_volume(tmp_path, master, extra=["-mode=native"], data_dir=data)
    try:
        r = httpx.get(f"{server.url}/{VID},5{0x1234:08x}", timeout=30)
        assert r.status_code == 200 and r.content == b"left with native"
        assert (data / f"{VID}.dat").exists() and not (data / NATIVE_FOLDER).exists()
        assert any(e.get("event") == "volumes owned by native in mixed mode moved back to -dir" and e["volumes"] == [VID]
                   for e in log_events(server.proc.log_path))
    finally:
        server.stop()


def _status_doc(server: VolumeProc, client: httpx.Client, query: str = "") -> dict:
    r = client.get(f"{server.url}/status{query}")
    assert r.status_code == 200, r.text
    return r.json()


def _status_ids(doc: dict) -> list[int]:
    return [v["Id"] for v in doc["Volumes"] or []]


def _ui_rows(page: str) -> dict[int, list[str]]:
    """The rows of the page's Volumes table by volume id (a list: a volume listed twice has two)."""
    start = page.index("<h2>Volumes</h2>")
    table = page[start:page.index("</tbody>", start)]
    rows: dict[int, list[str]] = {}
    for m in re.finditer(r"<tr>\s*<td><code>(\d+)</code></td>.*?</tr>", table, re.S):
        rows.setdefault(int(m.group(1)), []).append(m.group(0))
    return rows


def _route(server: VolumeProc, routes: dict[str, str | None], version: str) -> None:
    r = httpx.patch(f"{server.url}/weedpy/routes", json={"routes": routes, "version": version}, timeout=30)
    assert r.status_code == 200, r.text


class ListPoller:
    """/status and the UI polled on fresh connections: how many times each answer lists each volume."""

    def __init__(self, server: VolumeProc) -> None:
        self.server = server
        self.answers: list[tuple[str, dict[int, int]]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> ListPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _poll(self) -> None:
        with httpx.Client(timeout=60, headers={"Connection": "close"}) as client:
            while not self._stop.is_set():
                try:
                    r = client.get(f"{self.server.url}/status")
                    ids = _status_ids(r.json())
                    self.answers.append(("status", {v: ids.count(v) for v in set(ids)}))
                    page = client.get(f"{self.server.url}/ui/index.html")
                    self.answers.append(("ui", {v: len(rows) for v, rows in _ui_rows(page.text).items()}))
                except Exception as exc:  # noqa: BLE001 - every failed poll counts
                    self.failures.append(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("workers", [1, 2])
def test_status_and_ui_list_both_sides_volumes_once(tmp_path: Path, master: MasterProc, workers: int) -> None:
    """/status and /ui/index.html list the volumes native owns with Go's, each once, with the values
    Go gave the same volume (on the go route and on the native one); a poller during moves never
    sees a volume missing or twice. With -workers=2 every process answers some (fresh connections),
    and a worker's request log names `native` for the requests of a volume native owns."""
    data = tmp_path / "data"
    server = start_mixed(tmp_path, master, data, workers=workers)
    fresh = httpx.Client(timeout=60, headers={"Connection": "close"})
    try:
        allocate_volume(server, VID)
        allocate_volume(server, OTHER)
        for key in range(1, 6):
            for vid in (VID, OTHER):
                r = fresh.put(f"{server.url}/{_fid(vid, key)}", content=random.Random(key).randbytes(100 * key))
                assert r.status_code == 201, r.text
        assert fresh.delete(f"{server.url}/{_fid(VID, 5)}").status_code == 202
        go_doc = _status_doc(server, fresh)
        assert _status_ids(go_doc) == [VID, OTHER]
        go_entry = {v["Id"]: v for v in go_doc["Volumes"]}[VID]
        assert go_entry["FileCount"] == 5 and go_entry["DeleteCount"] == 1 and go_entry["Size"] > 1500
        go_row = _ui_rows(fresh.get(f"{server.url}/ui/index.html").text)[VID]

        move_volume(server, VID, "native")
        for target in ("go", "native"):
            if target == "native":  # native's read-only view of Go's files answers; the merge is the same
                _route(server, {"admin.status": "native", "admin.ui": "native"}, "lists-native")
            for _ in range(4 * workers):
                doc = _status_doc(server, fresh)
                assert _status_ids(doc) == [VID, OTHER], (target, doc)
                entry = {v["Id"]: v for v in doc["Volumes"]}[VID]
                assert entry == go_entry, (target, entry, go_entry)
                assert [d["dir"] for d in doc["DiskStatuses"]] == [str(data.resolve())]
                rows = _ui_rows(fresh.get(f"{server.url}/ui/index.html").text)
                assert sorted(rows) == [VID, OTHER] and all(len(r) == 1 for r in rows.values()), (target, rows)
                if target == "go":
                    assert rows[VID] == go_row  # Go's template, Go's values
            pretty = fresh.get(f"{server.url}/status?pretty=y")
            assert pretty.text.startswith("{\n  \"DiskStatuses\": [") and _status_ids(pretty.json()) == [VID, OTHER]
            body = fresh.get(f"{server.url}/status").content
            head = fresh.head(f"{server.url}/status")
            assert head.status_code == 200 and head.content == b""
            # the merged length (the disks' used and free bytes may change a digit in between)
            entry_bytes = len(json.dumps(go_entry, separators=(",", ":")))
            assert abs(int(head.headers["content-length"]) - len(body)) <= 8 and entry_bytes > 200
            if workers == 1:  # HTTP/1.0: the page runs to the close, as Go sends it (a worker's relay frames its own)
                with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
                    sock.sendall(b"GET /ui/index.html HTTP/1.0\r\n\r\n")
                    answer = b"".join(iter(lambda: sock.recv(65536), b""))
                head_10, _, page_10 = answer.partition(b"\r\n\r\n")
                assert head_10.startswith(b"HTTP/1.1 200") and b"chunked" not in head_10.lower(), head_10
                assert sorted(_ui_rows(page_10.decode())) == [VID, OTHER]
        _route(server, {"admin.status": None, "admin.ui": None}, "lists-go")

        out = call(server.grpc_port, "VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse)
        assert out.ok, out  # no volume list: one disk status per -dir, the native folder's file system is the same
        assert [d.dir for d in out.response.disk_statuses] == [str(data.resolve())]

        with ListPoller(server) as poller:
            for to in ("go", "native", "go", "native"):
                move_volume(server, VID, to)
                time.sleep(0.3)
        assert not poller.failures, poller.failures[:5]
        assert len(poller.answers) > 10
        wrong = [(kind, counts) for kind, counts in poller.answers if counts != {VID: 1, OTHER: 1}]
        assert not wrong, wrong[:5]

        if workers > 1:  # each request's log line names the side that served it, in every process
            for key in range(10, 30):
                assert fresh.put(f"{server.url}/{_fid(VID, key)}", content=b"w").status_code == 201
                assert fresh.get(f"{server.url}/{_fid(VID, key)}").content == b"w"
            deadline = time.monotonic() + 60  # the log is flushed from a thread, a moment later
            while True:
                lines = [e for e in log_events(server.proc.log_path)
                         if e.get("event") == "http" and e.get("path", "").startswith(f"/{VID},")
                         and int(e["path"].split(",")[1][:-8], 16) >= 10]
                if {e["worker"] for e in lines} == {0, 1} or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert {e["worker"] for e in lines} == {0, 1}, lines
            assert {e["target"] for e in lines} == {"native"}, [e for e in lines if e["target"] != "native"]
    finally:
        fresh.close()
        server.stop()


def _state(server: VolumeProc) -> vs.VolumeServerState:
    out = call(server.grpc_port, "GetState", vs.GetStateRequest(), vs.GetStateResponse)
    assert out.ok, out
    return out.response.state


def _set_state(server: VolumeProc, maintenance: bool, version: int) -> vs.VolumeServerState:
    out = call(server.grpc_port, "SetState",
               vs.SetStateRequest(state=vs.VolumeServerState(maintenance=maintenance, version=version)),
               vs.SetStateResponse)
    assert out.ok, out
    return out.response.state


# rpcs Go 4.48 refuses in maintenance mode, each with a request naming one volume
GUARDED = {
    "VolumeMarkWritable": lambda vid: (vs.VolumeMarkWritableRequest(volume_id=vid), vs.VolumeMarkWritableResponse),
    "VolumeConfigure": lambda vid: (vs.VolumeConfigureRequest(volume_id=vid, replication="000"),
                                    vs.VolumeConfigureResponse),
    "BatchDelete": lambda vid: (vs.BatchDeleteRequest(file_ids=[_fid(vid, 1)]), vs.BatchDeleteResponse),
    "VacuumVolumeCleanup": lambda vid: (vs.VacuumVolumeCleanupRequest(volume_id=vid), vs.VacuumVolumeCleanupResponse),
    "WriteNeedleBlob": lambda vid: (vs.WriteNeedleBlobRequest(volume_id=vid, needle_id=99, size=4, needle_blob=b"blob"),
                                    vs.WriteNeedleBlobResponse),
}


def _refusals_match(server: VolumeProc, native_vid: int, go_vid: int) -> None:
    """Every guarded rpc of the volume native owns is refused exactly as Go refuses its own; a
    BatchDelete naming both sides' volumes too (split between them: Go's refusal)."""
    refusals = {}
    for method, make in GUARDED.items():
        go = call(server.grpc_port, method, *make(go_vid))
        native = call(server.grpc_port, method, *make(native_vid))
        assert (go.status, go.message) == ("UNKNOWN", f"volume server 127.0.0.1:{server.port} is in maintenance mode"), \
            (method, go)
        assert (native.status, native.message) == (go.status, go.message), method
        refusals[method] = (go.status, go.message)
    both = call(server.grpc_port, "BatchDelete", vs.BatchDeleteRequest(file_ids=[_fid(go_vid, 1), _fid(native_vid, 1)]),
                vs.BatchDeleteResponse)
    assert (both.status, both.message) == refusals["BatchDelete"]


def _master_saw_state(master: MasterProc, server: VolumeProc, state: str) -> bool:
    """The master's verbose log: a heartbeat from the server's front address changed its state."""
    text = master.proc.log_path.read_text(errors="replace")
    return re.search(rf"master sees state update from 127\.0\.0\.1:{server.port}: {state}\s*$", text, re.M) is not None


@pytest.fixture()
def verbose_master(tmp_path: Path):
    m = start_master(tmp_path / "m", global_flags=["-v=1"])
    yield m
    m.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_maintenance_mode_is_one_state_for_both_owners(tmp_path: Path, verbose_master: MasterProc, workers: int) -> None:
    """SetState (answered by Go) puts the volumes native owns in maintenance mode too: each guarded
    rpc of one is refused with Go's own refusal, GetState is one state on either route, the master's
    heartbeat carries it, the volumes are served again once normal, and the state survives a
    restart of the mixed server."""
    master = verbose_master
    data = tmp_path / "data"
    server = start_mixed(tmp_path, master, data, workers=workers)
    try:
        allocate_volume(server, VID)
        allocate_volume(server, OTHER)
        for vid in (VID, OTHER):
            assert httpx.put(f"{server.url}/{_fid(vid, 1)}", content=b"one", timeout=30).status_code == 201
        move_volume(server, VID, "native")
        assert _state(server) == vs.VolumeServerState()

        on = _set_state(server, True, 0)
        assert on.maintenance and on.version == 1
        assert _state(server) == on
        wait_until(lambda: _master_saw_state(master, server, r"maintenance:true\s+version:1"),
                   what="the master to see maintenance mode")
        _route(server, {"/volume_server_pb.VolumeServer/GetState": "native"}, "state-native")
        assert _state(server) == on  # native's answer is Go's state
        _route(server, {"/volume_server_pb.VolumeServer/GetState": None}, "state-go")
        _refusals_match(server, VID, OTHER)
        # AllocateVolume: a new volume on Go, and one on native (the side new volumes go to)
        go_new = call(server.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=20, version=3),
                      vs.AllocateVolumeResponse)
        assert httpx.post(f"{server.url}/weedpy/volumes/new?owner=native", timeout=10).status_code == 200
        native_new = call(server.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=21, version=3),
                          vs.AllocateVolumeResponse)
        assert not go_new.ok and "is in maintenance mode" in go_new.message, go_new
        assert (native_new.status, native_new.message) == (go_new.status, go_new.message)
        assert _volume_files(data, 21) == {"go": [], "native": []}
        assert httpx.get(f"{server.url}/{_fid(VID, 1)}", timeout=30).content == b"one"  # reads go on
        # what Go 4.48 serves in maintenance mode, native serves too
        marked = [call(server.grpc_port, "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=vid),
                       vs.VolumeMarkReadonlyResponse) for vid in (OTHER, VID)]
        assert marked[0].ok and marked[1].ok, marked

        off = _set_state(server, False, 1)
        assert not off.maintenance and off.version == 2 and _state(server) == off
        wait_until(lambda: _master_saw_state(master, server, "version:2"), what="the master to see normal mode")
        allocate_volume(server, 21)  # served: on native, as asked
        assert "21.dat" in _volume_files(data, 21)["native"]
        for vid in (VID, OTHER):
            assert call(server.grpc_port, "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=vid),
                        vs.VolumeMarkWritableResponse).ok
            out = call(server.grpc_port, "BatchDelete", vs.BatchDeleteRequest(file_ids=[_fid(vid, 1)]),
                       vs.BatchDeleteResponse)
            assert out.ok and [r.status for r in out.response.results] == [202], out

        assert _set_state(server, True, 2).version == 3
    finally:
        server.stop()
    server = start_mixed(tmp_path, master, data, workers=workers)
    try:
        assert _owners(server) == [VID, 21]
        state = _state(server)
        assert state.maintenance and state.version == 3
        wait_until(lambda: _master_saw_state(master, server, r"maintenance:true\s+version:3"),
                   what="the master to see maintenance mode after the restart")
        _refusals_match(server, VID, OTHER)
        assert not _set_state(server, False, 3).maintenance
        assert call(server.grpc_port, "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=VID),
                    vs.VolumeMarkWritableResponse).ok
    finally:
        server.stop()
