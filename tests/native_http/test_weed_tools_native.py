"""`weed upload`, `weed download` and `weed benchmark` against a master whose only volume server
is weedpy in native mode: zero failed requests, the files come back intact, and `weedpy verify`
finds every volume intact afterwards."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import start_master, wait_for_volume_server
from tests.support.weedpy_proc import start_weedpy_volume
from weedpy.weedbin import find_weed_binary


@pytest.mark.slow
def test_weed_tools_against_native(tmp_path: Path) -> None:
    m = start_master(tmp_path / "m", volume_size_limit_mb=64)
    v = None
    try:
        v = start_weedpy_volume(tmp_path, m, extra=["-mode=native", "-max=32"])
        wait_for_volume_server(m, f"127.0.0.1:{v.port}")
        weed = str(find_weed_binary())
        files = {"a.txt": b"hello native weedpy\n" * 500, "b.bin": bytes(range(256)) * 4096, "empty.dat": b""}
        src = tmp_path / "src"
        src.mkdir()
        for name, data in files.items():
            (src / name).write_bytes(data)
        out = subprocess.run([weed, "upload", f"-master={m.address}", *[str(src / n) for n in files]],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        uploaded = json.loads(out.stdout)
        assert [u["fileName"] for u in uploaded] == list(files) and all(not u.get("error") for u in uploaded)
        dst = tmp_path / "dst"
        dst.mkdir()
        for u in uploaded:
            out = subprocess.run([weed, "download", f"-server={m.address}", f"-dir={dst}", u["fid"]],
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
        for u, (name, data) in zip(uploaded, files.items()):
            # An empty needle is served without a file name (Go reads nothing for it), so weed
            # download names it by its file id, against Go too.
            got = dst / (name if data else u["fid"].replace(",", ",", 1))
            assert got.read_bytes() == data, name
        failed, completed, shown = _benchmark(weed, m.address, tmp_path / "list.txt")
        if completed == [3000, 0] and failed == [0, 0]:
            # weed benchmark's own race (weed/command/benchmark.go, benchRead): it starts the
            # goroutine that feeds the readers (readFileIds), which sizes its loop by
            # readStats.total, before it sets readStats.total; when that goroutine runs first, the
            # read phase ends at once having read nothing ("Completed requests: 0" in 0.000 s).
            # Read the listed files again, as a read phase of its own: -readSequentially reads
            # every line of the list (the 3000 files written) and never looks at the total.
            read_failed, read_completed, shown = _benchmark(weed, m.address, tmp_path / "list.txt",
                                                            "-readOnly", "-readSequentially")
            failed, completed = failed[:1] + read_failed, completed[:1] + read_completed
        assert failed == [0, 0] and completed == [3000, 3000], shown
    finally:
        if v is not None:
            v.stop()
        m.stop()
    verify = subprocess.run([sys.executable, "-m", "native.storage.verify", str(v.data_dir)],
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _benchmark(weed: str, master: str, id_list: Path, *flags: str) -> tuple[list[int], list[int], str]:
    """(failed, completed) per phase that `weed benchmark` reports, and the tail of its output."""
    bench = subprocess.run([weed, "benchmark", f"-master={master}", "-n=3000", "-c=16", "-size=1024",
                            f"-list={id_list}", *flags], capture_output=True, text=True, timeout=600)
    failed = [int(x) for x in re.findall(r"Failed requests:\s+([0-9]+)", bench.stdout)]
    completed = [int(x) for x in re.findall(r"Completed requests:\s+([0-9]+)", bench.stdout)]
    return failed, completed, bench.stdout[-2000:] + bench.stderr[-1000:]
