"""What a native server imports before it answers: nothing the first request does not need.

Start-up time is Python's import time, so the heavy modules that only some requests use load
with the first such request: numpy (needle maps, EC, scrubs: loaded by the first volume, in
the loading threads), Pillow (image resizing), the S3 client and httpx (remote fetches and
storage backends), the gRPC handler families (the first gRPC call), the differ, the gateway's
proxy and mixed mode's follower (other modes), importlib.metadata (finding the Go binary),
tomllib (a security.toml or route table to read), html (the status page) and the email package
(HTTP dates are formatted without it). The master client imports h2's connection machinery and
the generated messages (`proto.lazy`) in a worker thread once the ports listen; the storage core
loads by part (`native.storage._exports`): the volume code with the first volume (in a loading
thread), compaction with the first vacuum, erasure coding with the first EC shard or read."""

from __future__ import annotations

import subprocess
import sys

DEFERRED = (
    "numpy", "PIL", "httpx", "native.s3", "difftool", "gateway.app", "native.http._imaging", "native.grpc._router",
    "native.grpc._copy", "native.follower", "importlib.metadata", "tomllib", "html", "email",
    "h2.connection", "proto.master_pb2", "proto.volume_server_pb2", "native.ec_net", "native.storage._volume",
    "native.storage._volume_load", "native.storage._vacuum", "native.storage._scrub", "native.storage.tier._volume",
)


def test_native_server_start_up_imports_leave_the_heavy_modules_out() -> None:
    code = (
        "import sys\n"
        "import weedpy.cli, weedpy.serve.lifecycle, native.server, native.storage, native.storage.ec\n"
        f"print(','.join(m for m in {DEFERRED!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_deferred_modules_load_when_used(tmp_path) -> None:
    """The deferral is real: opening a volume (its map) imports numpy, so the check above can fail."""
    code = (
        "import sys\n"
        "from native.storage import Volume\n"
        "assert 'numpy' not in sys.modules\n"
        f"Volume.create({str(tmp_path)!r}, 1).close()\n"
        "print('numpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_grpc_handlers_load_with_the_first_use() -> None:
    """native.grpc's router and tables are there once asked for (a server's first gRPC call)."""
    code = (
        "import sys\n"
        "import native.server, native.grpc\n"
        "assert 'native.grpc._router' not in sys.modules\n"
        "print(len(native.grpc.HANDLERS) > 40, 'native.grpc._router' in sys.modules, callable(native.grpc.build_router))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"]


def test_the_master_client_loads_its_modules_and_a_volume_its_code() -> None:
    """The deferrals above are real: the master client's preload brings h2's connection core and
    the messages, creating a volume brings the volume code (so the first test can fail)."""
    code = (
        "import sys, tempfile\n"
        "import native.server\n"
        "from native import master_client\n"
        "from native.storage import Store\n"
        "assert 'h2.connection' not in sys.modules and 'native.storage._volume' not in sys.modules\n"
        "master_client._load_master_modules()\n"
        "s = Store.open([tempfile.mkdtemp()], max_counts=[2])\n"
        "s.allocate_volume(1)\n"
        "s.close()\n"
        "print(*(m in sys.modules for m in ('h2.connection', 'proto.master_pb2', 'proto.volume_server_pb2', 'native.storage._volume')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True"] * 4


def test_what_start_up_made_is_out_of_the_collectors_full_passes() -> None:
    """A full collection walks every tracked object with the GIL held, so each one stalls the
    process's connections: what the imports, the master client's lazily loaded messages and a
    volume's map (numpy) made is frozen (weedpy/imports.py), and a full pass then walks only a
    few objects instead of tens of thousands."""
    code = (
        "import gc, tempfile\n"
        "import weedpy.cli\n"
        "from weedpy.imports import imports_without_gc\n"
        "with imports_without_gc():\n"
        "    import weedpy.serve.lifecycle, native.server\n"
        "walked_after_imports = len(gc.get_objects())\n"
        "from native.master_client import _load_master_modules\n"
        "_load_master_modules()\n"
        "walked_after_master = len(gc.get_objects())\n"
        "gc.unfreeze()\n"
        "print(walked_after_imports, walked_after_master, len(gc.get_objects()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    after_imports, after_master, everything = map(int, out.stdout.split())
    assert everything > 20_000  # what the serving stack is made of: a full pass without the freeze
    assert after_imports < everything // 10
    assert after_master < everything // 10
