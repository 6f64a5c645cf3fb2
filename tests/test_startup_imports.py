"""What a native server imports before it answers: nothing the first request does not need.

Start-up time is Python's import time, so the heavy modules that only some requests use load
with the first such request: numpy (a needle map's bulk resolve, EC, scrubs: loaded by the
first volume without a current map file, in the loading threads; never by a restart whose map
files are current), Pillow (image resizing), the S3 client and httpx (remote fetches and
storage backends), the gRPC handler families (the first gRPC call), the differ, the gateway's
proxy and mixed mode's follower (other modes), importlib.metadata (finding the Go binary),
tomllib (a security.toml or route table to read), html (the status page) and the email package
(HTTP dates are formatted without it), gzip (a metrics scrape that asks for it), calendar (the first
If-Modified-Since), idna (trio's host names that are not ASCII), asyncio and uuid (structlog gets stand-ins for them:
`weedpy.imports.stand_in`) and exec mode's backend arguments. The master client imports h2's
connection machinery, the generated messages (`proto.lazy`) and the heartbeat's records in a
worker thread once the ports listen; the storage core loads by part (`native.storage._exports`): the volume code with
the first volume (in a loading thread), compaction with the first vacuum, erasure coding with
the first EC shard or read. What the imports cannot skip they do once: the methods dataclasses
and attrs generate are compiled at the first start and kept (weedpy/codecache.py), and trio's
lookup of the thread library reads the libraries already mapped instead of running `ldconfig`."""

from __future__ import annotations

import subprocess
import sys

import httpx

DEFERRED = (
    "numpy", "PIL", "httpx", "native.s3", "difftool", "gateway.app", "native.http._imaging", "native.grpc._router",
    "native.grpc._copy", "native.follower", "importlib.metadata", "tomllib", "html", "email",
    "h2.connection", "proto.master_pb2", "proto.volume_server_pb2", "native.ec_net", "native.storage._volume",
    "native.storage._volume_load", "native.storage._vacuum", "native.storage._scrub", "native.storage.tier._volume",
    "asyncio", "uuid", "gateway.backend_args", "native.storage.ec._volume", "native.storage.ec._layout", "gzip", "calendar",
    "native.heartbeat", "idna",
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
    """The deferral is real: a volume whose index needs a bulk resolve (no map file yet) imports
    numpy, so the check above can fail. A new or small volume does not."""
    _bulk_volume(tmp_path)
    first = _load_in_a_fresh_process(tmp_path, (
        "v = Volume.create(d, 2)\n"
        "for key in range(1, 51):\n"
        "    v.write_needle(Needle.create(key, 7, b'x' * key))\n"
        "v.delete_needle(3)\n"
        "v.close()\n"
        "v = Volume.load(d, 2)\n"
        "print('numpy' in sys.modules, len(v.nm), v.nm.deletion_count)\n"
        "v = Volume.load(d, 1)\n"
        "print('numpy' in sys.modules, os.path.exists(os.path.join(d, '1.nmx')))\n"
    ))
    assert first == [["False", "50", "1"], ["True", "True"]]  # a writable map keeps the deleted entry


def test_a_volume_whose_map_file_is_current_loads_without_numpy(tmp_path) -> None:
    """A restart: the map file is mapped and checked, the rows written since it was replayed,
    the tail checked, all without numpy; the map ends as a bulk resolve of the whole index."""
    expect = _bulk_volume(tmp_path)
    live = (1 << 32) + expect["Live"]
    _load_in_a_fresh_process(tmp_path, "Volume.load(d, 1).close()\n")  # the first start writes 1.nmx
    out = _load_in_a_fresh_process(tmp_path, (
        "v = Volume.load(d, 1)\n"
        "v.write_needle(Needle.create(1 << 40, 7, b'new'))\n"
        f"v.delete_needle({live})\n"
        "v.close()\n"
        "v = Volume.load(d, 1)\n"
        f"loaded = v.nm.counters(), v.nm.overlay_entries, v.nm.get({live}).size < 0\n"
        "print('numpy' in sys.modules, *loaded[1:])\n"
        "from native.storage._map_build import IdxRows, resolve\n"
        "whole = resolve(IdxRows(open(os.path.join(d, '1.idx'), 'rb').read(), 5), 3)\n"
        "print(loaded[0] == whole.memory, loaded[0].file_count)\n"
    ))
    assert out == [["False", "2", "True"], ["True", str(expect["FileCount"] + 1)]]


def test_a_read_only_volume_restarts_without_numpy_once_its_walk_is_recorded(tmp_path) -> None:
    """A volume loaded read-only takes Go's walk of its index as counters: the first such load
    runs it (numpy) and keeps it in the map file; the next one reads it from there."""
    _bulk_volume(tmp_path)
    _load_in_a_fresh_process(tmp_path, "Volume.load(d, 1).close()\n")  # a writable load writes 1.nmx
    load = (
        "v = Volume.load(d, 1, read_only_marks=(True, False))\n"
        "print('numpy' in sys.modules, v.nm.sorted_semantics, v.nm.counters().deletion_count)\n"
    )
    first, again = (_load_in_a_fresh_process(tmp_path, load)[0] for _ in range(2))
    assert first[:2] == ["True", "True"] and again[:2] == ["False", "True"] and first[2] == again[2]


_NEEDLES = 70_000  # over MapPolicy.file_min_rows: the index keeps a map file


def _bulk_volume(d) -> dict:
    """Volume 1 in `d`: `_NEEDLES` needles, 5% overwritten, 10% deleted (Go's counts returned)."""
    from tests.support.bulk_volumes import write_volume

    return write_volume(d, 1, _NEEDLES, True, seed=1)


def _load_in_a_fresh_process(d, body: str) -> list[list[str]]:
    """Run `body` (with `d`, the volumes' directory) in a new interpreter; its printed lines,
    split."""
    code = (
        "import os, sys\n"
        "from native.storage import Needle, Volume\n"
        f"d = {str(d)!r}\n" + body
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [line.split() for line in out.stdout.splitlines()]


def test_trio_encodes_a_host_name_that_is_not_ascii_with_the_real_idna() -> None:
    """trio imports idna at its top for host names that are not ASCII: the server's imports give
    it a stand-in (`DEFERRED` above), which loads idna at the first such name."""
    code = (
        "import sys\n"
        "import weedpy.cli, native.server, trio\n"
        "assert 'idna' not in sys.modules\n"
        "print(trio.socket.getaddrinfo and trio._socket.encode_hostname('b\u00fccher.example'), 'idna' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["b'xn--bcher-kva.example'", "True"]


def test_what_structlog_imports_for_its_async_methods_loads_when_they_are_used() -> None:
    """structlog gets stand-ins for asyncio and uuid (weedpy.imports.stand_in): its async log
    methods still work, through the real module, and the rest of the process imports the real
    one (so the check above can fail)."""
    code = (
        "import sys\n"
        "import weedpy.logs, structlog\n"
        "assert 'asyncio' not in sys.modules and 'uuid' not in sys.modules\n"
        "import asyncio, uuid\n"
        "async def log_async():\n"
        "    await structlog.get_logger().ainfo('from asyncio')\n"
        "    return asyncio.current_task() is not None\n"
        "print(asyncio.run(log_async()), type(uuid.uuid4()).__name__, structlog.stdlib.asyncio.get_running_loop is asyncio.get_running_loop)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-3:] == ["True", "UUID", "True"]


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
        "assert not {'h2.connection', 'native.heartbeat', 'native.storage._volume'} & set(sys.modules)\n"
        "master_client._load_master_modules()\n"
        "s = Store.open([tempfile.mkdtemp()], max_counts=[2])\n"
        "s.allocate_volume(1)\n"
        "s.close()\n"
        "print(*(m in sys.modules for m in ('h2.connection', 'proto.master_pb2', 'proto.volume_server_pb2', 'native.heartbeat', 'native.storage._volume')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True"] * 5


def test_a_server_without_a_state_file_starts_without_the_messages(tmp_path) -> None:
    """The leader reads state.pb (maintenance mode) before its ports listen: with no file there
    the state is the empty one and the generated messages load with the first look at it (the
    master client's preload), not on the way to the first answer. A saved state is read back."""
    code = (
        "import sys\n"
        "from native.grpc import StateFile\n"
        f"sf = StateFile({str(tmp_path)!r})\n"
        "print(sf.maintenance, 'proto.volume_server_pb2' in sys.modules)\n"
        "print(sf.proto().version, 'proto.volume_server_pb2' in sys.modules)\n"
        "sf.update(sf.proto().__class__(maintenance=True))\n"
        f"print(StateFile({str(tmp_path)!r}).maintenance)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "0", "True", "True"]


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


def test_a_server_restarted_on_current_map_files_never_loads_numpy(tmp_path) -> None:
    """Real server processes on a bulk-written volume: the first start resolves the index with
    numpy (and writes the map file); a restart serves the same counts and data without it."""
    from tests.native_core.support import start_native
    from tests.support.bulk_volumes import DATA, needle_fid
    from tests.support.procs import start_master

    data = tmp_path / "data"
    data.mkdir()
    expect = _bulk_volume(data)
    master = start_master(tmp_path / "master", volume_size_limit_mb=1000)
    try:
        seen = []
        for _ in ("first", "restart"):
            s = start_native(tmp_path, master, extra=["-workers=1"], data_dir=data)  # ready: every volume loaded
            try:
                with httpx.Client(timeout=20) as c:
                    status = {v["Id"]: v for v in c.get(f"{s.url}/status").json()["Volumes"]}
                    got = c.get(f"{s.url}/{needle_fid(1, expect['Live'])}")
                assert (status[1]["FileCount"], status[1]["DeleteCount"]) == (expect["FileCount"], expect["DeleteCount"])
                assert (got.status_code, got.content) == (200, DATA)
                seen.append((_numpy_mapped(s.proc.pid), (data / "1.nmx").exists()))
            finally:
                s.stop()
        assert seen == [(True, True), (False, True)]
    finally:
        master.stop()


def _numpy_mapped(pid: int) -> bool:
    """Whether a process has numpy's core extension mapped (it imported numpy)."""
    with open(f"/proc/{pid}/maps") as f:
        return "_multiarray_umath" in f.read()


_GENERATED = (
    "import dataclasses, os, sys\n"
    "import attr\n"
    "import weedpy.cli, weedpy.serve.lifecycle, native.server, native.http.uv_serve\n"
    "from weedpy.codecache import GeneratedCode, cache_path\n"
    "@dataclasses.dataclass(frozen=True)\n"
    "class Point:\n"
    "    x: int\n"
    "    y: 'list[int]' = dataclasses.field(default_factory=list)\n"
    "@attr.s(slots=True)\n"
    "class Pair:\n"
    "    a = attr.ib(default=1)\n"
    "    b = attr.ib(factory=dict)\n"
    "kept = weedpy.cli.GENERATED_CODE\n"
    "compiled = kept.compiled\n"
    "kept.finish()\n"
    "kept.finish()  # a second finish keeps what the first wrote\n"
    "p = Point(1)\n"
    "print(compiled, os.path.exists(cache_path()) and len(GeneratedCode().codes) > 300, 'exec' in vars(dataclasses), repr(p), p == Point(1, []),\n"
    "      hash(Point(2, ())) == hash((2, ())), repr(Pair()), Pair() == Pair(1, {}),\n"
    "      sorted(Point.__init__.__annotations__.items(), key=repr), Pair.__init__.__annotations__)\n"
)


def _run_generated(env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _GENERATED], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.split(maxsplit=2)


def test_the_methods_start_up_generates_are_compiled_once_and_kept(tmp_path) -> None:
    """dataclasses and attrs compile each class's methods from text: the first start compiles
    them (hundreds: the serving stack's dataclasses and trio's attrs classes) and keeps the code
    where the package's bytecode goes; the next start compiles none, and the classes behave the
    same as compiled without it (repr, equality, hash, annotations)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pyc")
    unkept = _run_generated({**env, "PYTHONDONTWRITEBYTECODE": "1"})
    first, again = _run_generated(env), _run_generated(env)
    assert int(first[0]) > 300 and again[0] == "0"
    assert first[1] == again[1] == "True"
    assert first[2] == again[2] == unkept[2]
    assert first[2].startswith("False Point(x=1, y=[]) True True Pair(a=1, b={}) True [(")
    assert list((tmp_path / "pyc").rglob("_generated_code.*.pyc"))


def test_no_kept_code_is_written_where_no_bytecode_is(tmp_path) -> None:
    """`PYTHONDONTWRITEBYTECODE`: every start compiles, as it would without the kept code."""
    import os

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(tmp_path / "pyc")}
    first, again = _run_generated(env), _run_generated(env)
    assert int(first[0]) > 300 and first[0] == again[0] and first[1] == again[1] == "False"
    assert not list(tmp_path.rglob("_generated_code.*"))


def test_trio_names_its_threads_without_running_ldconfig() -> None:
    """trio looks the thread library up at its import (to name its threads), which on Linux runs
    `ldconfig -p` in a child process: the server's imports answer from the libraries mapped into
    the process instead, start no process, and trio's threads still get their names."""
    code = (
        "import subprocess, threading\n"
        "spawned = []\n"
        "real = subprocess.Popen.__init__\n"
        "def record(self, args, *a, **k):\n"
        "    spawned.append(args)\n"
        "    real(self, args, *a, **k)\n"
        "subprocess.Popen.__init__ = record\n"
        "import weedpy.cli, native.server, trio\n"
        "def comm():\n"
        "    with open(f'/proc/self/task/{threading.get_native_id()}/comm') as f:\n"
        "        return f.read().strip()\n"
        "async def main():\n"
        "    return await trio.to_thread.run_sync(comm)\n"
        "print(spawned, trio.run(main))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(maxsplit=1) == ["[]", "comm from __mai\n"]  # trio names a thread for its function


def test_a_library_not_mapped_is_looked_up_as_before(tmp_path) -> None:
    from weedpy.imports import mapped_library

    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f01 r--p 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        "7f02-7f03 r--p 00000000 00:00 0 \n"
        "7f04-7f05 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libz.so.1.2.13\n"
    )
    assert [mapped_library(n, str(maps)) for n in ("z", "pthread", "ssl")] == ["libz.so.1.2.13", "libc.so.6", None]
    assert mapped_library("z", str(tmp_path / "absent")) is None


def test_the_kept_code_is_what_compiling_the_text_gives(tmp_path) -> None:
    """Every method text start-up generates, answered from the kept code (a second start), is
    the code object compiling that text gives: attrs's `__hash__` scripts too, whose number of
    the process is put back into the code kept with a stand-in; only the column span recorded for
    loading that number differs."""
    import os

    code = (
        "import builtins\n"
        "import weedpy.codecache as cc\n"
        "seen = []\n"
        "plain, seeded = cc.GeneratedCode.code, cc.GeneratedCode.seeded_code\n"
        "def code(self, source, filename, flags):\n"
        "    c = plain(self, source, filename, flags)\n"
        "    seen.append((source, filename, flags, c))\n"
        "    return c\n"
        "def seeded_code(self, source, filename, flags):\n"
        "    n = len(seen)\n"
        "    c = seeded(self, source, filename, flags)\n"
        "    seen[n:] = [(source, filename, flags, c)]\n"
        "    return c\n"
        "cc.GeneratedCode.code, cc.GeneratedCode.seeded_code = code, seeded_code\n"
        "import weedpy.cli, native.server, weedpy.serve.uv_host, native.http.uv_serve\n"
        "kept = weedpy.cli.GENERATED_CODE\n"
        "compiled = kept.compiled\n"
        "kept.finish()\n"
        "CODE = type(builtins.compile('', '', 'exec'))\n"
        "def bare(c):  # the code without its column spans, nested code too\n"
        "    return c.replace(co_linetable=b'', co_consts=tuple(bare(x) if type(x) is CODE else x for x in c.co_consts))\n"
        "def lines(c):\n"
        "    return [p[0] for p in c.co_positions()] + [lines(x) for x in c.co_consts if type(x) is CODE]\n"
        "def same(a, b):\n"
        "    return bare(a) == bare(b) and lines(a) == lines(b)\n"
        "differ = [f for s, f, fl, c in seen if not same(c, builtins.compile(s, f, 'exec', fl, True))]\n"
        "print(len(seen), sum('def __hash__' in s[0] for s in seen), compiled, differ)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pyc")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split(maxsplit=3)
            for _ in range(2)]
    assert int(runs[0][0]) > 400 and int(runs[0][1]) > 10 and runs[0][3] == runs[1][3] == "[]\n"
    assert runs[1][2] == "0"  # the second start takes all of them from the kept code
