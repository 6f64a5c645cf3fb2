"""What a native server imports before it answers: nothing the first request does not need.

Start-up time is Python's import time, so the heavy modules that only some requests use load
with the first such request: numpy (needle maps, EC, scrubs: loaded by the first volume, in
the loading threads), Pillow (image resizing), the S3 client and httpx (remote fetches and
storage backends), the gRPC handler families (the first gRPC call), the differ, the gateway's
proxy and mixed mode's follower (other modes), importlib.metadata (finding the Go binary),
tomllib (a security.toml or route table to read), html (the status page) and the email package
(HTTP dates are formatted without it)."""

from __future__ import annotations

import subprocess
import sys

DEFERRED = (
    "numpy", "PIL", "httpx", "native.s3", "difftool", "gateway.app", "native.http._imaging", "native.grpc._router",
    "native.grpc._copy", "native.follower", "importlib.metadata", "tomllib", "html", "email",
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
