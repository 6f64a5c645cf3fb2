"""Which peers and remote endpoints this server may dial: Go 4.48's rule, applied by every mode.

Some rpcs make the volume server dial an address the caller supplies: the source of VolumeCopy,
VolumeEcShardsCopy and VolumeTailReceiver, and the remote store and replicas of
FetchAndWriteNeedle. Go 4.48 refuses loopback, link-local, unspecified and metadata-service
addresses there unless started with `-volume.allowUntrustedRemoteEndpoints`. weedpy's rule
(`PeerPolicy`), the same in native mode (the handlers check) and proxy mode (the gateway checks
before relaying, its backend being started with the flag):

- a peer must be a bare `host:port[.grpcPort]` (Go's replica-target syntax);
- a peer volume server is trusted when the master lists it as a volume server (so a single-host
  cluster on 127.0.0.1 works without the flag, which Go needs there);
- any other peer must pass Go's check for peers (no loopback, link-local, unspecified,
  interface-local or metadata-service address; private networks allowed). Being on this
  server's own `-ip` is no exception: on a loopback `-ip` that would open every local port;
- remote object-store endpoints must pass Go's stricter check (private and CGNAT ranges refused
  too), whatever the master says;
- when the operator passes `-volume.allowUntrustedRemoteEndpoints` themselves, nothing is checked.

Host names are resolved once here; Go re-resolves when it dials, so this check does not defend
against DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence

import trio

from weedpy.addresses import ServerAddress
from weedpy.grpc import GrpcError, Status
from weedpy.logs import get_logger

__all__ = [
    "PeerPolicy", "blocked_reason", "endpoint_reason", "replica_target_problem", "split_server_address", "http_address", "grpc_target",
    "master_volume_servers",
]

log = get_logger("serve.peers")

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_IMDS = ipaddress.ip_address("169.254.169.254")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
_LINK_LOCAL_MULTICAST = (ipaddress.ip_network("224.0.0.0/24"), ipaddress.ip_network("ff02::/16"))
_INTERFACE_LOCAL_MULTICAST = ipaddress.ip_network("ff01::/16")
_IMDS_HOSTS = frozenset({"metadata.google.internal", "metadata"})


def _embedded_ipv4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 destination inside IPv6 transition forms (mapped, 6to4, NAT64, Teredo)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(endpoint: str, ip: IP, allow_private: bool) -> str | None:
    """Go's checkBlockedIPPolicy: why this address must not be dialled, or None."""
    q = f'"{endpoint}"'
    if ip == _IMDS:
        return f"remote endpoint {q} targets instance metadata service {ip}"
    if ip.is_loopback:
        return f"remote endpoint {q} resolves to loopback address {ip}"
    if ip.is_unspecified:
        return f"remote endpoint {q} resolves to unspecified address {ip}"
    if ip.is_link_local or any(ip in net for net in _LINK_LOCAL_MULTICAST if net.version == ip.version):
        return f"remote endpoint {q} resolves to link-local address {ip}"
    if ip.version == 6 and ip in _INTERFACE_LOCAL_MULTICAST:
        return f"remote endpoint {q} resolves to interface-local address {ip}"
    if not allow_private:
        if any(ip in net for net in _PRIVATE if net.version == ip.version):
            return f"remote endpoint {q} resolves to private address {ip}"
        if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
            return f"remote endpoint {q} resolves to CGNAT address {ip}"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return blocked_reason(endpoint, embedded, allow_private)
    return None


def split_server_address(address: str) -> tuple[str, int | None]:
    """`host:port[.grpcPort]` (Go's pb.ServerAddress) -> (host, http port); no port -> None."""
    try:
        addr = ServerAddress.parse(address)
    except ValueError:
        return address.strip().strip("[]"), None
    return addr.host, addr.http_port


def grpc_target(address: str) -> tuple[str, int]:
    """(host, gRPC port) of Go's pb.ServerAddress `host:port[.grpcPort]`; a bad one fails as Go's
    handlers fail it (codes.Unknown)."""
    try:
        return ServerAddress.parse(address).grpc
    except ValueError:
        raise GrpcError(Status.UNKNOWN, f"invalid server address {address!r}") from None


def http_address(address: str) -> str:
    host, port = split_server_address(address)
    return f"{host}:{port}" if port is not None else host


async def _resolve(host: str) -> list[IP]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    with trio.fail_after(2):
        infos = await trio.socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def replica_target_problem(target: str) -> str | None:
    """Go's syntactic checks on a peer or replica target (a bare host:port)."""
    if not target.strip():
        return "replica target is empty"
    if "://" in target or any(c in target for c in "/?#@\\"):
        return f'replica target "{target}" must be a bare host:port'
    host, sep, port = target.rpartition(":")
    if not sep or not port:
        return f'replica target "{target}" must be a bare host:port'
    if not host.strip("[]"):
        return f'replica target "{target}" has no host'
    return None


async def endpoint_reason(endpoint: str, host: str, allow_private: bool) -> str | None:
    """Go's validation of a dial target: the first blocking reason among its addresses (a peer,
    `allow_private`, is named a replica target in the metadata-host refusal, as Go names it)."""
    if host.lower() in _IMDS_HOSTS:
        what = "replica target" if allow_private else "remote endpoint"
        return f'{what} "{endpoint}" targets instance metadata service'
    try:
        ips = await _resolve(host)
    except (OSError, trio.TooSlowError) as exc:
        return f'resolve remote endpoint host "{host}": {exc}'
    for ip in ips:
        reason = blocked_reason(endpoint, ip, allow_private)
        if reason is not None:
            return reason
    return None


class PeerPolicy:
    """Decides whether a peer volume server or a remote endpoint may be dialled (module docstring)."""

    def __init__(self, known_servers: Callable[[], Awaitable[frozenset[str]]], cache_seconds: float = 5.0) -> None:
        self._fetch = known_servers
        self._cache: frozenset[str] = frozenset()
        self._cached_at = -1e9
        self._ttl = cache_seconds

    async def _listed(self, address: str) -> bool:
        key = http_address(address)
        if key in self._cache and time.monotonic() - self._cached_at < self._ttl:
            return True
        try:
            self._cache = await self._fetch()
            self._cached_at = time.monotonic()
        except (OSError, ValueError, trio.TooSlowError) as exc:
            log.warning("cannot list volume servers from the master", error=str(exc))
        return key in self._cache

    async def peer_reason(self, address: str) -> str | None:
        problem = replica_target_problem(address)
        if problem is not None:
            return problem
        host, _ = split_server_address(address)
        reason = await endpoint_reason(address, host, allow_private=True)
        if reason is None or await self._listed(address):
            return None
        return reason

    async def remote_endpoint_reason(self, endpoint: str) -> str | None:
        """Go's strict check of a remote object-store endpoint (weedpy.serve.remote_endpoints)."""
        from weedpy.serve.remote_endpoints import remote_endpoint_reason  # it builds on this module

        return await remote_endpoint_reason(endpoint)


async def master_volume_servers(masters: Sequence[str], https: ssl.SSLContext | None = None) -> frozenset[str]:
    """Every volume server (url and public url) in the topology of the first master that answers
    (`https`: over HTTPS with this context, as Go's volume server with https.client.enabled)."""
    import httpx  # heavy to import; only an untrusted peer's first check needs it

    last: Exception | None = None
    scheme = "https" if https is not None else "http"
    async with httpx.AsyncClient(timeout=3, verify=https if https is not None else True) as client:
        for master in masters:
            try:
                r = await client.get(f"{scheme}://{http_address(master)}/dir/status")
                r.raise_for_status()
                topo = r.json().get("Topology", {})
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
                continue
            out = set()
            for dc in topo.get("DataCenters") or []:
                for rack in dc.get("Racks") or []:
                    for node in rack.get("DataNodes") or []:
                        out.update(x for x in (node.get("Url"), node.get("PublicUrl")) if x)
            return frozenset(out)
    raise OSError(f"no master answered /dir/status: {last}")
