"""`.vif` parsing as lenient as Go's protojson, and output Go parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from native.storage import VolumeInfo, load_volume_info, save_volume_info

# what weed 4.48 wrote for a fresh volume (its protojson adds the odd spacing)
GO_VIF = b"""{
  "files":  [],
  "version":  3,
  "replication":  "",
  "bytesOffset":  5,
  "datFileSize":  "0",
  "expireAtSec":  "0",
  "readOnly":  false,
  "ecShardConfig":  null,
  "readOnlyCanDelete":  false
}"""


def test_parse_go_output() -> None:
    info = VolumeInfo.parse(GO_VIF)
    assert info == VolumeInfo(version=3, bytes_offset=5)
    assert VolumeInfo.parse(info.to_json()) == info


def test_lenient_forms() -> None:
    info = VolumeInfo.parse(b'{"bytes_offset": "4", "expire_at_sec": 17, "read_only": true, "replication": "010"}')
    assert (info.bytes_offset, info.expire_at_sec, info.read_only, info.replication) == (4, 17, True, "010")
    old = VolumeInfo.parse(b'{"version": 2, "BytesOffset": 4, "DestroyTime": "99"}')
    assert (old.version, old.bytes_offset, old.expire_at_sec) == (2, 4, 99)
    ec = VolumeInfo.parse(b'{"ecShardConfig": {"dataShards": 10, "parityShards": 4}}')
    assert ec.ec_shard_config == {"dataShards": 10, "parityShards": 4}
    remote = VolumeInfo.parse(b'{"files": [{"backendType": "s3", "key": "k"}]}')
    assert remote.has_remote_file


@pytest.mark.parametrize("raw", [b"[]", b"{", b'{"nope": 1}', b'{"version": -1}', b'{"readOnly": "yes"}', b'{"bytesOffset": 1.5}'])
def test_rejects_non_volume_info(raw: bytes) -> None:
    with pytest.raises(ValueError):
        VolumeInfo.parse(raw)


def test_files(tmp_path: Path) -> None:
    p = tmp_path / "1.vif"
    assert load_volume_info(p) is None
    p.write_bytes(b"  \n")
    assert load_volume_info(p) is None  # empty counts as absent, as in Go
    save_volume_info(p, VolumeInfo(version=3, bytes_offset=4, read_only=True))
    assert load_volume_info(p) == VolumeInfo(version=3, bytes_offset=4, read_only=True)
    assert b'"datFileSize": "0"' in p.read_bytes() and not (tmp_path / "1.vif.tmp").exists()
