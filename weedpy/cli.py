"""Command-line entry points: `weedpy volume|local|verify|version` and `weedpy-volume`.

`weedpy-volume` takes `weed volume`'s flags with no subcommand, which is how the upstream test
harness starts a non-Go volume server (`--port P --dir D ...`). Flag errors exit 2 with one line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from weedpy.imports import imports_without_gc, libraries_mapped_here, stand_in

# start-up time: see weedpy/imports.py (trio imports idna for host names that are not ASCII)
with imports_without_gc(), libraries_mapped_here(), stand_in("idna"):
    from weedpy.codecache import GeneratedCode

    # the methods dataclasses and attrs generate for start-up's classes come from the kept code
    # (start-up time: weedpy/codecache.py); `_run` hands the compile step back once the serving
    # stack is imported
    GENERATED_CODE = GeneratedCode().install()

    from weedpy import __version__
    from weedpy.config import GO_VOLUME_FLAG_NAMES, VOLUME_FLAGS, Mode, VolumeConfig, detect_host_address, parse_volume_args
    from weedpy.datadirs import FATAL_EXIT, data_folder_problem
    from weedpy.flags import FlagError, HelpRequested, format_usage, print_usage
    from weedpy.logs import configure_logging, fatal_line, get_logger
    from weedpy.security import find_security_file, load_security
    from weedpy.tls import TlsConfigError, load_volume_tls
    from weedpy.serve.routes import RouteTableError, load_route_table, mode_route_problem, native_route_table
    from weedpy.weedbin import WeedNotFound, find_weed_binary, weed_version

__all__ = ["main", "volume_main"]

USAGE = """usage: weedpy <command> [flags]

commands:
  volume   run a volume server (accepts every `weed volume` flag; see `weedpy volume -h`)
  local    run a local master and a weedpy volume server for trying things out
  verify   check every volume in a data directory against its index
  diff     dual-run differ: `diff run SCENARIO --out DIR`, `diff report`, `diff replay FIXTURE`
  cutover  `cutover status|move VOLUME -to=native|go|settle`: route table and evidence, volume moves
  version  print weedpy's and the Go backend's versions

global flags (before the command, as with weed): -config_dir=DIR
"""


def _volume_usage() -> str:
    """`weedpy volume -h`: Go's flags as `weed volume -h` prints them, then the flags weedpy adds."""
    go = [s for s in VOLUME_FLAGS if s.name in GO_VOLUME_FLAG_NAMES]
    others = [s for s in VOLUME_FLAGS if s.name not in GO_VOLUME_FLAG_NAMES]
    return "\n".join([
        "usage: weedpy volume [flags]",
        "Example: weedpy volume -port=8080 -dir=/tmp -max=5 -ip=server_name -master=localhost:9333",
        "",
        "weed volume 4.48 flags:",
        format_usage(go, defaults={"ip": detect_host_address()}),
        "",
        "weed's global flags (also accepted before the command) and weedpy's own:",
        format_usage(others),
    ])


def _fail(message: str) -> int:
    fatal_line(message)
    return 2


def run_volume(argv: Sequence[str], config_dir: str | None = None) -> int:
    try:
        cfg = parse_volume_args(argv, config_dir=config_dir)
    except HelpRequested:
        print_usage(_volume_usage())
        return 0
    except FlagError as exc:
        return _fail(str(exc))
    return serve(cfg)


def serve(cfg: VolumeConfig) -> int:
    """Run the server the configuration describes, in its mode."""
    several = cfg.workers > 1 and cfg.mode in (Mode.NATIVE, Mode.PROXY, Mode.MIXED)
    # numpy (needle maps, EC) does no linear algebra here: one OpenBLAS thread, not a pool per
    # process started at numpy's import (CPU at start-up, memory per worker); the worker processes
    # inherit it. A value the user set is kept.
    if cfg.mode in (Mode.NATIVE, Mode.MIXED):
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sink = configure_logging(cfg.log_level, worker=0 if several else None)
    try:
        security = load_security(find_security_file(cfg.security_file, cfg.config_dir))
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read security configuration: {exc}")
    if cfg.mode is Mode.NATIVE:  # the other modes' Go checks the folders itself (the proxy relays its message)
        problem = data_folder_problem(cfg.dirs)
        if problem is not None:
            fatal_line(problem)
            return FATAL_EXIT
    try:
        load_volume_tls(security)  # every mode, exec too: a certificate file that cannot be used stops here
    except TlsConfigError as exc:
        fatal_line(str(exc))
        return 1
    try:
        routes = load_route_table(cfg.routes_file)
    except RouteTableError as exc:
        return _fail(str(exc))
    if cfg.mode is Mode.NATIVE:
        routes = native_route_table(None if cfg.routes_file is None else routes)
    if cfg.mode is not Mode.MIXED:
        problem = settle_volumes(cfg)
        if problem is not None:
            fatal_line(problem)
            return 1
    if cfg.mode is not Mode.EXEC:
        problem = mode_route_problem(cfg.mode.value, routes)
        if problem is not None:
            return _fail(problem)
    if cfg.mode is Mode.NATIVE:
        with imports_without_gc():
            from native.server import NativeServer  # each mode imports only its own server

        from weedpy.serve.http_loop import uvloop_http  # the serving stack (see _run)

        on_uvloop = uvloop_http(os.environ)
        return _run(cfg, NativeServer(cfg, security, routes, uvloop=on_uvloop), sink, on_uvloop)
    try:
        weed = find_weed_binary(cfg.weed_binary)
    except WeedNotFound as exc:
        return _fail(str(exc))
    if cfg.mode is Mode.EXEC:
        from gateway.backend_args import backend_environ, exec_argv, security_config_dir  # exec mode only (start-up time)

        argv = exec_argv(cfg, weed, security_config_dir(cfg))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(argv[0], argv, backend_environ(os.environ))
    if cfg.mode is Mode.MIXED:
        with imports_without_gc():
            from weedpy.mixed import mixed_server  # each mode imports only its own server

        return _run(cfg, mixed_server(cfg, security, routes, weed), sink)
    with imports_without_gc():
        from gateway.app import ProxyServer  # each mode imports only its own server

    from weedpy.serve.http_loop import uvloop_http  # the serving stack (see _run)

    server = ProxyServer(cfg, security, routes, weed)
    server.uvloop = cfg.workers == 1 and uvloop_http(os.environ)  # with workers, they relay on uvloop
    return _run(cfg, server, sink, server.uvloop)


def settle_volumes(cfg: VolumeConfig) -> str | None:
    """Every mode but mixed serves the volumes mixed mode left with native from Go's folders:
    a move a crash interrupted is resolved, then their files go back (native/storage/ownership.py).
    None, or why the folders could not be settled."""
    from native.storage.ownership import Layout, OwnershipError, settle  # files only; loads the storage package

    layout = Layout.of(cfg.dirs, cfg["dir.idx"] or None)
    try:
        resolved, moved = settle(layout)
    except (OSError, OwnershipError) as exc:
        return f"cannot move the volumes mixed mode left with native back to -dir: {exc}"
    log = get_logger("cli")
    if resolved is not None:
        log.warning("interrupted volume move resolved", volume=resolved["vid"], outcome=resolved["outcome"],
                    step=resolved.get("step"), to=resolved["to"])
    if moved:
        log.info("volumes owned by native in mixed mode moved back to -dir", volumes=moved, mode=cfg.mode.value)
    return None


def _run(cfg: VolumeConfig, server, sink, on_uvloop: bool = False) -> int:
    """Serve until stopped; `on_uvloop`: trio as uvloop's guest (the server answers its common
    HTTP requests from uvloop's callbacks, weedpy/serve/uv_host.py)."""
    with imports_without_gc():
        import trio  # the serving stack loads only for a server (not for -h, verify, version)

        from weedpy.serve.lifecycle import run_server  # the serving stack, likewise

    if on_uvloop:
        with imports_without_gc():
            from weedpy.serve.uv_host import run_trio_on_uvloop  # uvloop loads only for a server on it

        GENERATED_CODE.finish()
        return run_trio_on_uvloop(run_server, cfg, server, sink)
    GENERATED_CODE.finish()
    return trio.run(run_server, cfg, server, sink)


def volume_main() -> None:
    """`weedpy-volume`: `weed volume`'s flags directly, no subcommand."""
    raise SystemExit(run_volume(sys.argv[1:]))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    config_dir: str | None = None
    while args and args[0].startswith("-") and args[0].lstrip("-").split("=", 1)[0] == "config_dir":
        head = args.pop(0)
        if "=" in head:
            config_dir = head.split("=", 1)[1]
        elif args:
            config_dir = args.pop(0)
        else:
            return _fail("flag needs an argument: -config_dir")
    if not args or args[0] in ("-h", "-help", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "volume":
        return run_volume(rest, config_dir)
    if command == "local":
        from weedpy.local import run_local  # each command imports only what it runs

        return run_local(rest)
    if command == "verify":
        try:
            from native.storage.verify import main as verify_main  # each command imports only what it runs
        except ImportError:
            return _fail("verify is not available in this build")
        return verify_main(rest)
    if command == "diff":
        from difftool.cli import main as diff_main  # each command imports only what it runs

        return diff_main(rest)
    if command == "cutover":
        from weedpy.cutover import main as cutover_main  # each command imports only what it runs

        return cutover_main(rest)
    if command == "version":
        try:
            go = weed_version(find_weed_binary(), 2) or "unknown"
        except WeedNotFound:
            go = "not found"
        print(f"weedpy {__version__} (Go backend: {go})")
        return 0
    return _fail(f"unknown command {command!r}\n{USAGE}")


if __name__ == "__main__":
    raise SystemExit(main())
