"""Applying the master's storage backend configuration to a store (Go's LoadFromPbStorageBackends
at volume server start): register the backends, then let tiered volumes that were loaded
before their backend was known read their super block. Blocking (the reads are remote).

The caller supplies the object store clients (`native.s3.s3_object_store` on a volume server):
storage holds no network code."""

from __future__ import annotations

from collections.abc import Iterable

from ._object_store import ObjectStoreFactory

__all__ = ["apply_storage_backends"]


def apply_storage_backends(store, storage_backends: Iterable, clients: ObjectStoreFactory) -> list[str]:
    """Register the backends, reaching their stores through `clients`; returns the names added."""
    added = store.tier_backends.load(storage_backends, clients)
    unreachable: set[str] = set()
    if added:
        for v in store.volumes():
            refresh = getattr(v, "refresh_super_block", None)
            if refresh is None or v.remote.backend_name in unreachable:
                continue
            if not refresh():  # one failure per backend is enough: registration is waiting
                unreachable.add(v.remote.backend_name)
    return added
