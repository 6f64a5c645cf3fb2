"""Native mode while volumes are still loading: /healthz 503 until all are loaded, /status lists
only the loaded ones, a volume still loading is not served, and everything is once it loads."""

from __future__ import annotations

from pathlib import Path

import httpx

from native.loading import load_volumes
from native.storage import Needle, Store
from tests.native_http.support import start_native


def test_a_volume_still_loading_is_neither_listed_nor_served(tmp_path: Path) -> None:
    with start_native(tmp_path / "data", volumes=(1, 2)) as server:
        store = server.store
        for vid in (1, 2):
            store.write_needle(vid, Needle.create(5, 0x1234ABCD, b"hello", name=b"a.txt", mime=b"text/plain", last_modified=1))
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        # volume 2 goes back to "discovered, not loaded": what a restart's background load sees
        loc = store.location_of(2)[1]
        loc.unload_volume(2)
        assert loc.discover() == [2] and store.loading
        assert httpx.get(f"{server.url}/healthz").status_code == 503
        listed = [v["Id"] for v in httpx.get(f"{server.url}/status").json()["Volumes"]]
        assert listed == [1]
        assert httpx.get(f"{server.url}/1,051234abcd").content == b"hello"
        assert httpx.get(f"{server.url}/2,051234abcd").status_code == 404  # not held here (yet)
        store.load_pending()
        assert not store.loading
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert [v["Id"] for v in httpx.get(f"{server.url}/status").json()["Volumes"]] == [1, 2]
        assert httpx.get(f"{server.url}/2,051234abcd").content == b"hello"


async def test_load_volumes_tells_the_master_client_after_each_volume(tmp_path: Path) -> None:
    s = Store.open([tmp_path], max_counts=10)
    for vid in (3, 4, 5):
        s.allocate_volume(vid)
    s.close()
    store = Store.open([tmp_path], max_counts=10, load=False)
    store.discover()
    told: list[int] = []
    await load_volumes(store, lambda: told.append(len(store.volumes())))
    assert len(told) == 3 and min(told) >= 1 and not store.loading  # once per volume, after it is mounted
    store.close()
