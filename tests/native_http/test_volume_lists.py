"""The merge of another store's volumes into /status (bytes): Go's other bytes kept as written, one
entry per volume (the store's wins), sorted by id, `?pretty` kept; an answer that is not Go's
/status document is left alone. The pages and the real Go answers: tests/native_core/test_volume_ownership.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from native.http.volume_lists import merge_status, store_volumes
from native.storage import Needle, Volume

GO_STATUS = (b'{"DiskStatuses":[{"dir":"/d","all":100,"used":40,"free":60,"percent_free":60.000004,'
             b'"percent_used":39.999996}],"Version":"30GB 4.48 \\u003cx\\u003e",'
             b'"Volumes":[%s]}')
GO_ENTRY = (b'{"Collection":"","DiskType":"","RemoteStorageName":"","ReplicaPlacement":{},"Ttl":{"Count":0,"Unit":0},'
            b'"Size":%d,"DeletedByteCount":0,"ModifiedAtSecond":0,"Id":%d,"DiskId":0,"CompactRevision":0,'
            b'"FileCount":1,"DeleteCount":0,"Version":3,"ReadOnly":false,"ReadOnlyCanDelete":false}')


def _store(tmp_path: Path, *vids: int):
    vols = []
    for vid in vids:
        v = Volume.create(tmp_path, vid, collection="caf\xc3\xa9")  # a Go byte string: "café" in UTF-8
        v.write_needle(Needle.create(1, 0x1234, b"owned by native"))
        vols.append(v)
    return SimpleNamespace(locations=[SimpleNamespace(volumes=lambda: list(vols), disk_type="")]), vols


def test_native_volumes_join_go_s_list_once_sorted_by_id(tmp_path: Path) -> None:
    store, vols = _store(tmp_path, 7)
    try:
        listed = store_volumes(store)
        body = GO_STATUS % b",".join([GO_ENTRY % (8, 5), GO_ENTRY % (8, 7), GO_ENTRY % (8, 9)])
        merged = merge_status(body, listed)
        assert merged is not None
        doc = json.loads(merged)
        assert [v["Id"] for v in doc["Volumes"]] == [5, 7, 9]
        seven = doc["Volumes"][1]
        assert seven["Collection"] == "café" and seven["Size"] > 8 and seven["FileCount"] == 1
        # every byte of Go's besides the list as Go wrote it: the float32 digits, the escapes
        assert merged.startswith(b'{"DiskStatuses":[{"dir":"/d","all":100,"used":40,"free":60,"percent_free":60.000004,'
                                 b'"percent_used":39.999996}],"Version":"30GB 4.48 \\u003cx\\u003e","Volumes":[')
        assert merged.count(b'"Id":') == 3

        empty = merge_status(GO_STATUS.replace(b"[%s]", b"null"), listed)
        assert [v["Id"] for v in json.loads(empty)["Volumes"]] == [7]
        assert merge_status(GO_STATUS.replace(b"[%s]", b"null"), []) == GO_STATUS.replace(b"[%s]", b"null")

        pretty = json.dumps(json.loads(body), indent=2).encode()
        merged_pretty = merge_status(pretty, listed)
        assert merged_pretty.startswith(b'{\n  "DiskStatuses": [\n    {\n      "dir": "/d"')
        assert [v["Id"] for v in json.loads(merged_pretty)["Volumes"]] == [5, 7, 9]

        for not_status in (b"", b"404 page not found\n", b'{"error":"x"}', b'[1]', b'{"Volumes":[{"Id":"x"}]}'):
            assert merge_status(not_status, listed) is None, not_status
    finally:
        for v in vols:
            v.close()
