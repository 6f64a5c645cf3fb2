"""A test-only fault for proxy mode's uvloop relay: one of its callbacks raises for the requests
that ask for it, so the tests can watch a bug end one request (an answer, not a hang) while the
server goes on serving the others.

`WEEDPY_TEST_ONLY_FAULT=relay:CALLBACK[,CALLBACK...]` arms the named callbacks; a request with
the header `Weedpy-Test-Fault: CALLBACK` makes that one raise while the relay serves it. Like
mixed mode's fault switch (weedpy/cutover.py, which reads the same variable for its own kinds),
it is honoured only by a server bound to a loopback address; any other refuses to start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from weedpy.serve.live_routes import is_loopback

__all__ = ["FAULT_HEADER", "RELAY_CALLBACKS", "TEST_FAULT_ENV", "RelayTestFault", "relay_fault"]

TEST_FAULT_ENV = "WEEDPY_TEST_ONLY_FAULT"
FAULT_HEADER = b"weedpy-test-fault"
# where the relay can be made to raise: before any backend connection (`start`), with one
# there but nothing sent on it (`attach`), as Go's answer arrives (`response_data`, and
# `parsed` for the answers the relay re-frames)
RELAY_CALLBACKS = frozenset({"start", "attach", "response_data", "parsed"})
_KIND = "relay:"


class RelayTestFault(RuntimeError):
    """What an armed callback raises."""


def relay_fault(bind_ip: str, environ: Mapping[str, str] | None = None) -> frozenset[str] | None:
    """The armed callbacks, or None when the variable is unset or names another kind (mixed
    mode's). ValueError: a malformed value, or a server not bound to a loopback address."""
    raw = (environ if environ is not None else os.environ).get(TEST_FAULT_ENV, "")
    if not raw.startswith(_KIND):
        return None
    names = frozenset(raw[len(_KIND):].split(","))
    if not names <= RELAY_CALLBACKS:
        raise ValueError(f"{TEST_FAULT_ENV}={raw!r}: expected relay:CALLBACK[,CALLBACK...], "
                         f"each one of {', '.join(sorted(RELAY_CALLBACKS))}")
    if not is_loopback(bind_ip):
        raise ValueError(f"{TEST_FAULT_ENV} is set: it makes the relay fail on purpose and is for tests only; "
                         f"a server bound to {bind_ip or 'every address'} refuses it")
    return names
