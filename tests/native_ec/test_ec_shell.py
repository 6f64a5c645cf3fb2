"""`weed shell ec.encode` / `ec.decode` (4.48) over a cluster of one Go and one native volume
server: shards spread over both, every needle readable from either (remote intervals), deletes
through either, and the decoded volume serving everything but the deleted needles."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from native.storage import actual_size
from proto import volume_server_pb2 as vs
from tests.native_core.support import go_and_native_cluster
from tests.support.waiting import wait_until
from tests.native_grpc.test_copy_go import fid, read, unary, upload
from weedpy.weedbin import find_weed_binary

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    with go_and_native_cluster(tmp_path_factory.mktemp("ec-shell")) as c:
        yield c


def shell(master, command: str) -> str:
    out = subprocess.run([str(find_weed_binary()), "shell", f"-master={master.address}"],
                         input=f"lock\n{command}\nunlock\n", capture_output=True, text=True, timeout=300)
    return out.stdout + out.stderr


def master_file_count(master, vid: int) -> int | None:
    """The file count the master's topology holds for volume `vid` (None while it lists no such volume)."""
    doc = httpx.get(f"{master.url}/vol/status", timeout=10).json()
    for racks in doc["Volumes"]["DataCenters"].values():
        for nodes in racks.values():
            for volumes in nodes.values():
                for v in volumes or ():
                    if v["Id"] == vid:
                        return v["FileCount"]
    return None


def files(v, vid: int) -> list[str]:
    return sorted(p.name for p in v.data_dir.iterdir() if p.name.startswith(f"{vid}."))


# Size of a needle uploaded by `upload` (name "f.bin", mime "application/x-test", last-modified)
def needle_size(data_len: int) -> int:
    return 4 + data_len + 1 + (1 + 5) + (1 + 18) + 5


@pytest.mark.parametrize("source", ["native", "go"])
def test_shell_encode_read_delete_decode(cluster, source: str) -> None:
    master, go, native = cluster
    vid = 61 if source == "native" else 62
    src = native if source == "native" else go
    assert unary(src.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3), vs.AllocateVolumeResponse).ok
    rnd = random.Random(vid)
    want = {}
    for key in range(1, 40):
        body = rnd.randbytes(rnd.randint(1, 200_000))
        upload(src, fid(vid, key), body)
        want[fid(vid, key)] = body
    # the master learns the volume's contents from a periodic heartbeat
    wait_until(lambda: master_file_count(master, vid) == len(want), timeout=60, what=f"the master to count volume {vid}")
    out = shell(master, f"ec.encode -volumeId={vid} -force")
    assert "Successfully completed EC encoding" in out, out

    def shards() -> tuple[list[str], list[str]] | None:
        held = tuple([n for n in files(v, vid) if ".ec" in n and n[-2:].isdigit()] for v in (go, native))
        return held if sum(map(len, held)) == 14 else None

    held_go, held_native = wait_until(shards, what="14 shards on disk")
    assert held_go and held_native
    for f, body in want.items():
        assert read(native, f) == (200, body), f
        assert read(go, f) == (200, body), f
    for server, key in ((native, 3), (go, 4)):
        r = httpx.delete(f"{server.url}/{fid(vid, key)}", timeout=30)
        body = want.pop(fid(vid, key))
        # Go reports the bytes it read: GetActualSize applied twice
        assert (r.status_code, r.json()) == (202, {"size": actual_size(actual_size(needle_size(len(body)), 3), 3)})
        assert read(native, fid(vid, key))[0] == 404 and read(go, fid(vid, key))[0] == 404
    out = shell(master, f"ec.decode -volumeId={vid}")
    assert "error" not in out.lower(), out
    wait_until(lambda: not any(".ec" in n for v in (go, native) for n in files(v, vid)), what="the shards removed")
    holder = next(v for v in (go, native) if f"{vid}.dat" in files(v, vid))
    for f, body in want.items():
        assert read(holder, f) == (200, body), f
    assert read(holder, fid(vid, 3))[0] == 404 and read(holder, fid(vid, 4))[0] == 404
