"""The `weed volume` 4.48 flag set, weedpy's additions, and the resolved server configuration.

Every flag of `weed volume -h` (4.48) is accepted with Go's name, type and default; the resolved
`VolumeConfig` applies Go's derived defaults (gRPC port = port + 10000, public port = port,
bind ip = ip, id = ip:port, ...). weedpy's own flags never come from the environment except
`-mode`, which reads `WEEDPY_MODE` (or the upstream harness's `VOLUME_SERVER_RUST_MODE`).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from weedpy.flags import FlagError, FlagSpec, Kind, ParsedFlags, parse_flags

__all__ = [
    "Mode",
    "VOLUME_FLAGS",
    "GO_VOLUME_FLAG_NAMES",
    "VolumeConfig",
    "parse_volume_args",
    "detect_host_address",
    "check_mode",
]


class Mode(enum.Enum):
    EXEC = "exec"
    PROXY = "proxy"
    NATIVE = "native"
    MIXED = "mixed"


DEFAULT_MODE = Mode.NATIVE


def _one_of(*choices: Any):
    def check(value: Any) -> None:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(str, choices))}")
    return check


def check_mode(value: str) -> None:
    """A -mode value: one of the modes, or empty for "not given" (then env, then the default)."""
    if value:
        _one_of(*(m.value for m in Mode))(value)


def usable_cores() -> int:
    """Every core this process may run on, like Go's GOMAXPROCS (the affinity mask, not the machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _non_negative(value: int) -> None:
    if value < 0:
        raise ValueError("must not be negative")


def _port(value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError("not a TCP port")


def detect_host_address() -> str:
    """Go's util.DetectedHostAddress: the first non-loopback IPv4 address, else `localhost`."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # routing lookup only; nothing is sent
            addr = s.getsockname()[0]
            if addr and not addr.startswith("127."):
                return addr
    except OSError:
        pass
    return "localhost"


S, I, B, D = Kind.STRING, Kind.INT, Kind.BOOL, Kind.DURATION

# weed volume 4.48, `weed volume -h`: name, kind, default, help. The default of -ip is detected at
# parse time (see parse_volume_args), as Go does.
_GO_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("port", I, 8080, "http listen port", _port),
    FlagSpec("port.grpc", I, 0, "grpc listen port", _port),
    FlagSpec("port.public", I, 0, "port opened to public", _port),
    FlagSpec("ip", S, "", "ip or server name, also used as identifier"),
    FlagSpec("id", S, "", "volume server id. If empty, default to ip:port"),
    FlagSpec("publicUrl", S, "", "Publicly accessible address"),
    FlagSpec("ip.bind", S, "", "ip address to bind to. If empty, default to same as -ip option."),
    FlagSpec("master", S, "localhost:9333", "comma-separated master servers"),
    FlagSpec("mserver", S, "", "comma-separated master servers (deprecated, use -master instead)"),
    FlagSpec("preStopSeconds", I, 10, "number of seconds between stop send heartbeats and stop volume server"),
    FlagSpec("idleTimeout", I, 30, "connection idle seconds", _non_negative),
    FlagSpec("dataCenter", S, "", "current volume server's data center name"),
    FlagSpec("rack", S, "", "current volume server's rack name"),
    FlagSpec("index", S, "memory", "Choose [memory|leveldb|leveldbMedium|leveldbLarge] mode for memory~performance balance.",
             _one_of("memory", "leveldb", "leveldbMedium", "leveldbLarge")),
    FlagSpec("disk", S, "", "[hdd|ssd|<tag>] hard drive or solid state drive or any tag"),
    FlagSpec("tags", S, "", "comma-separated tag groups per data dir; each group uses ':' (e.g. fast:ssd,archive)"),
    FlagSpec("fileSizeLimitMB", I, 256, "limit file size to avoid out of memory"),
    FlagSpec("readMode", S, "proxy", "[local|proxy|redirect] how to deal with non-local volume: 'not found|proxy to remote node|redirect volume location'.",
             _one_of("local", "proxy", "redirect")),
    FlagSpec("cpuprofile", S, "", "cpu profile output file"),
    FlagSpec("memprofile", S, "", "memory profile output file"),
    FlagSpec("compactionMBps", I, 0, "limit background compaction or copying speed in mega bytes per second"),
    FlagSpec("maintenanceMBps", I, 0, "limit maintenance (replication / balance) IO rate in MB/s. Unset is 0, no limitation."),
    FlagSpec("metricsPort", I, 0, "Prometheus metrics listen port", _port),
    FlagSpec("metricsIp", S, "", "metrics listen ip. If empty, default to same as -ip.bind option."),
    FlagSpec("dir", S, "/tmp", "directories to store data files. dir[,dir]..."),
    FlagSpec("dir.idx", S, "", "directory to store .idx files"),
    FlagSpec("max", S, "8", "maximum numbers of volumes, count[,count]... If set to zero, the limit will be auto configured as free disk space divided by volume size."),
    FlagSpec("whiteList", S, "", "comma separated Ip addresses having write permission. No limit if empty."),
    FlagSpec("minFreeSpacePercent", S, "1", "minimum free disk space (default to 1%). Low disk space will mark all volumes as ReadOnly (deprecated, use minFreeSpace instead)."),
    FlagSpec("minFreeSpace", S, "", "min free disk space (value<=100 as percentage like 1, other as human readable bytes, like 10GiB). Low disk space will mark all volumes as ReadOnly."),
    FlagSpec("images.fix.orientation", B, False, "Adjust jpg orientation when uploading."),
    FlagSpec("readBufferSizeMB", I, 4, "<experimental> larger values can optimize query performance but will increase some memory usage,Use with hasSlowRead normally."),
    FlagSpec("concurrentUploadLimitMB", I, 0, "limit total concurrent upload size, 0 means unlimited", _non_negative),
    FlagSpec("concurrentDownloadLimitMB", I, 0, "limit total concurrent download size, 0 means unlimited", _non_negative),
    FlagSpec("pprof", B, False, "enable pprof http handlers. precludes -memprofile and -cpuprofile"),
    FlagSpec("hasSlowRead", B, True, "<experimental> if true, this prevents slow reads from blocking other requests, but large file read P99 latency will increase."),
    FlagSpec("inflightUploadDataTimeout", D, 60.0, "inflight upload data wait timeout of volume servers"),
    FlagSpec("inflightDownloadDataTimeout", D, 60.0, "inflight download data wait timeout of volume servers"),
    FlagSpec("index.leveldbTimeout", I, 0, "alive time for leveldb (default to 0). If leveldb of volume is not accessed in ldbTimeout hours, it will be off loaded to reduce opened files and memory consumption."),
    FlagSpec("debug", B, False, "serves runtime profiling data via pprof on the port specified by -debug.port"),
    FlagSpec("debug.port", I, 6060, "http port for debugging", _port),
    FlagSpec("volume.allowUntrustedRemoteEndpoints", B, False, "if true, FetchAndWriteNeedle accepts arbitrary remote S3 endpoints including loopback / link-local hosts. Default rejects internal / metadata endpoints."),
    FlagSpec("options", S, "", "a file of command line options, each line in optionName=optionValue format"),
)

# Global `weed` options that may precede the subcommand; accepted inside the volume flag set too
# so `weedpy-volume` (no subcommand) takes them.
_GLOBAL_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("config_dir", S, "", "directory with toml configuration files (security.toml)", from_env=False),
    FlagSpec("v", I, 0, "log level for V logs (passed to the Go backend)", from_env=False),
    FlagSpec("logdir", S, "", "log directory for the Go backend's glog files", from_env=False),
    FlagSpec("logtostderr", B, False, "Go backend logs to standard error", from_env=False),
    FlagSpec("alsologtostderr", B, False, "Go backend also logs to standard error", from_env=False),
)

_WEEDPY_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("mode", S, "", "weedpy: exec|proxy|native|mixed (env WEEDPY_MODE, VOLUME_SERVER_RUST_MODE; default native)",
             check_mode, from_env=False),
    FlagSpec("routes", S, "", "weedpy: route table TOML file (mixed mode; env WEEDPY_ROUTES)", from_env=False),
    FlagSpec("dir.native", S, "", "weedpy: the native side's own data directories for dual-run routes "
             "(shadow, native+verify), one per -dir", from_env=False),
    FlagSpec("dir.control", S, "", "weedpy: dual-run noise control: directories of a second Go backend that "
             "answers every compared request too, one per -dir (optional)", from_env=False),
    FlagSpec("securityFile", S, "", "weedpy: path of security.toml (instead of -config_dir search)", from_env=False),
    FlagSpec("weedBinary", S, "", "weedpy: path of the Go weed binary (env WEEDPY_WEED_BINARY)", from_env=False),
    FlagSpec("offsetBytes", I, 0, "weedpy: needle offset width 4 or 5 for new volumes (0: same as the bundled weed)",
             lambda v: _one_of(0, 4, 5)(v), from_env=False),
    FlagSpec("logLevel", S, "info", "weedpy: log level (debug, info, warning, error)",
             _one_of("debug", "info", "warning", "error"), from_env=False),
    FlagSpec("workers", I, 0, "weedpy: processes that serve the HTTP ports (0: one per usable core); the "
             "first also serves gRPC and talks to the master", _non_negative, from_env=False),
)

VOLUME_FLAGS: tuple[FlagSpec, ...] = _GO_FLAGS + _GLOBAL_FLAGS + _WEEDPY_FLAGS
GO_VOLUME_FLAG_NAMES: frozenset[str] = frozenset(s.name for s in _GO_FLAGS)


@dataclasses.dataclass(frozen=True, slots=True)
class VolumeConfig:
    """A volume server's resolved settings: what Go would run with, plus weedpy's choices."""

    flags: ParsedFlags
    mode: Mode
    ip: str
    bind_ip: str
    port: int
    grpc_port: int
    public_port: int
    server_id: str
    public_url: str
    masters: tuple[str, ...]
    dirs: tuple[str, ...]
    max_counts: tuple[int, ...]
    pre_stop_seconds: int
    idle_timeout: int
    read_mode: str
    whitelist: tuple[str, ...]
    security_file: str | None
    config_dir: str | None
    weed_binary: str | None
    routes_file: str | None
    log_level: str
    workers: int  # processes serving the HTTP ports, the leader included (>= 1)
    argv: tuple[str, ...] = ()  # the arguments this was parsed from (a worker process parses them again)

    def __getitem__(self, name: str) -> Any:
        return self.flags[name]

    @property
    def split_public_port(self) -> bool:
        return self.public_port != self.port

    def folder_tags(self) -> list[tuple[str, ...]]:
        """Go's parseVolumeTags of -tags: one `a:b` group per -dir; a single group applies to all."""
        text: str = self.flags["tags"]
        entries = text.split(",") if text.strip() else []
        n = len(self.dirs)

        def norm(group: str) -> tuple[str, ...]:
            return tuple(dict.fromkeys(t.strip().lower() for t in group.split(":") if t.strip()))

        if len(entries) == 1:
            return [norm(entries[0])] * n
        return [norm(entries[i]) if i < len(entries) else () for i in range(n)]


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _mode_from(value: str, environ: Mapping[str, str]) -> Mode:
    text = value or environ.get("WEEDPY_MODE", "") or environ.get("VOLUME_SERVER_RUST_MODE", "")
    if not text:
        return DEFAULT_MODE
    try:
        return Mode(text.strip().lower())
    except ValueError:
        raise FlagError(f"invalid mode {text!r}: must be one of exec, proxy, native, mixed") from None


def parse_volume_args(
    argv: Sequence[str],
    environ: Mapping[str, str] | None = None,
    config_dir: str | None = None,
) -> VolumeConfig:
    """Parse `weed volume`-style arguments into a VolumeConfig (raises FlagError)."""
    env = os.environ if environ is None else environ
    flags = parse_flags(
        VOLUME_FLAGS, argv, environ=env,
        read_file=lambda p: Path(p).read_text(),
    )
    v = flags.values
    ip = v["ip"] or detect_host_address()
    port = v["port"]
    grpc_port = v["port.grpc"] or port + 10000
    if grpc_port > 65535:
        raise FlagError(f"invalid value for flag -port.grpc: port {port}+10000 is not a TCP port; set -port.grpc")
    public_port = v["port.public"] or port
    master_text = v["mserver"] if ("mserver" in flags.explicit and "master" not in flags.explicit) else v["master"]
    masters = _split_list(master_text)
    if not masters:
        raise FlagError("invalid value '' for flag -master: no master address")
    dirs = _split_list(v["dir"])
    if not dirs:
        raise FlagError("invalid value '' for flag -dir: no directory")
    try:
        counts = tuple(int(x) for x in _split_list(v["max"]))
    except ValueError:
        raise FlagError(f"invalid value {v['max']!r} for flag -max: not a list of integers") from None
    if not counts or any(c < 0 for c in counts):
        raise FlagError(f"invalid value {v['max']!r} for flag -max: counts must be >= 0")
    if len(counts) == 1:
        counts = counts * len(dirs)
    elif len(counts) != len(dirs):
        raise FlagError(f"invalid value {v['max']!r} for flag -max: {len(counts)} counts for {len(dirs)} directories")
    # Go splits on commas and trims nothing: " 10.0.0.1" is an entry no address equals
    whitelist = tuple(v["whiteList"].split(",")) if v["whiteList"] else ()
    mode = _mode_from(v["mode"], env)
    weed_binary = v["weedBinary"] or env.get("WEEDPY_WEED_BINARY") or None
    cfg_dir = v["config_dir"] or config_dir or None
    return VolumeConfig(
        flags=flags,
        mode=mode,
        ip=ip,
        bind_ip=v["ip.bind"] or ip,
        port=port,
        grpc_port=grpc_port,
        public_port=public_port,
        server_id=v["id"] or f"{ip}:{port}",
        public_url=v["publicUrl"] or f"{ip}:{public_port}",
        masters=masters,
        dirs=dirs,
        max_counts=counts,
        pre_stop_seconds=max(0, v["preStopSeconds"]),
        idle_timeout=v["idleTimeout"],
        read_mode=v["readMode"],
        whitelist=whitelist,
        security_file=v["securityFile"] or None,
        config_dir=cfg_dir,
        weed_binary=weed_binary,
        routes_file=v["routes"] or env.get("WEEDPY_ROUTES") or None,
        log_level=v["logLevel"],
        workers=v["workers"] or usable_cores(),
        argv=tuple(argv),
    )
