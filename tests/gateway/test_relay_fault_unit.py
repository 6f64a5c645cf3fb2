"""The uvloop relay's test-only fault switch (gateway/relay_fault.py): armed only by a server
bound to a loopback address, and only by its own kind of the shared variable."""

from __future__ import annotations

import pytest

from gateway.relay_fault import relay_fault


def test_the_relay_fault_arms_the_named_callbacks_on_loopback_only() -> None:
    env = {"WEEDPY_TEST_ONLY_FAULT": "relay:attach,response_data"}
    assert relay_fault("127.0.0.1", env) == {"attach", "response_data"}
    assert relay_fault("::1", {"WEEDPY_TEST_ONLY_FAULT": "relay:start"}) == {"start"}
    for bind in ("0.0.0.0", "", "10.0.0.5"):
        with pytest.raises(ValueError, match="for tests only"):
            relay_fault(bind, env)


def test_the_relay_fault_leaves_mixed_modes_kinds_alone_and_refuses_unknown_callbacks() -> None:
    assert relay_fault("0.0.0.0", {}) is None
    assert relay_fault("0.0.0.0", {"WEEDPY_TEST_ONLY_FAULT": "5xx:admin.read"}) is None  # mixed mode's
    for bad in ("relay:", "relay:idle_check", "relay:attach,"):
        with pytest.raises(ValueError, match="expected relay:CALLBACK"):
            relay_fault("127.0.0.1", {"WEEDPY_TEST_ONLY_FAULT": bad})
