"""Fixtures of the TLS tests: one test CA per session, a Go master requiring gRPC mTLS per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.procs import MasterProc
from tests.tls.support import Pki, make_pki, start_tls_master


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_master(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[MasterProc]:
    """A Go master whose gRPC port accepts only mTLS with the test CA; its working directory
    (`master.proc.log_path.parent.parent`) holds the security.toml `weed shell` needs too."""
    m = start_tls_master(tmp_path_factory.mktemp("tls-master"), pki)
    try:
        yield m
    finally:
        m.stop()
