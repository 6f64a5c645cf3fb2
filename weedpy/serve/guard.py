"""The write whitelist (-whiteList and security.toml guard.white_list), enforced on real client IPs.

The Go backend only ever sees the gateway's loopback connections, so Go's own guard cannot tell
clients apart: the gateway applies Go's rule itself. Active when the list is non-empty or a JWT
signing key is set; an empty list then allows everyone. Entries are exact IPs or CIDR blocks,
taken as Go takes them: untrimmed (" 10.0.0.1" matches no address), a CIDR that does not parse
left out (a list of only such entries allows everyone), an empty piece kept as an IP no address
equals.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable

__all__ = ["Guard"]


@dataclasses.dataclass(frozen=True, slots=True)
class Guard:
    ips: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> "Guard":
        ips: set[str] = set()
        nets = []
        for entry in entries:
            if "/" in entry:
                try:
                    nets.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    continue  # Go logs "Parse CIDR ... failed" and drops the entry
            else:
                ips.add(entry)
        return cls(frozenset(ips), tuple(nets))

    @property
    def restricts(self) -> bool:
        return bool(self.ips or self.networks)

    def allows(self, host: str) -> bool:
        if host in self.ips or not (self.ips or self.networks):  # `restricts` without a property call
            return True
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)
