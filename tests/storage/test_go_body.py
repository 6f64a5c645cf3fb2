"""read_body: a record body as Go's scanners read it (Needle.ReadNeedleBodyBytes): the fields
filled before the first problem, and Go's words for the problem."""

from __future__ import annotations

from native.storage import VERSION3, Needle, encode_needle, needle_string, read_body
from native.storage._types import actual_size


def parts(n: Needle) -> tuple[int, bytes]:
    raw = encode_needle(n, VERSION3, append_at_ns=77)
    size = int.from_bytes(raw[12:16], "big")
    return size, raw[16:actual_size(size, VERSION3)]


def test_a_clean_body_reads_whole() -> None:
    size, body = parts(Needle.create(5, 1, b"hello", name=b"a.txt", mime=b"text/plain", last_modified=9))
    got = read_body(5, size, body, VERSION3)
    assert got.error is None and got.data == b"hello" and got.name == b"a.txt" and got.mime == b"text/plain"
    assert got.last_modified == 9 and got.append_at_ns == 77 and got.checksum == Needle(5, 1, b"hello").checksum


def test_an_empty_body_keeps_the_stored_checksum() -> None:
    size, body = parts(Needle(6, 1, checksum=0x1234))
    got = read_body(6, size, body, VERSION3)
    assert (size, got.error, got.data, got.checksum, got.append_at_ns) == (0, None, b"", 0x1234, 77)


def test_overruns_stop_where_go_stops() -> None:
    size, body = parts(Needle.create(7, 1, b"hello", name=b"a.txt", mime=b"m"))
    data_size_overrun = b"\xff\xff\xff\xff" + body[4:]
    got = read_body(7, size, data_size_overrun, VERSION3)
    assert got.error == "index out of range 1: needle data corrupted" and got.data == b"" and got.checksum == 0
    name_overrun = body[:10] + bytes([200]) + body[11:]  # the name's length byte: past the record
    got = read_body(7, size, name_overrun, VERSION3)
    assert got.error == "index out of range 2: needle data corrupted"
    assert (got.data, got.name, got.flags & 0x02) == (b"hello", b"", 0x02)  # data and flags were read


def test_a_crc_mismatch_keeps_the_data_but_no_checksum() -> None:
    size, body = parts(Needle.create(8, 1, b"hello"))
    flipped = body[:size] + bytes(b ^ 1 for b in body[size:size + 4]) + body[size + 4:]
    got = read_body(8, size, flipped, VERSION3)
    assert got.data == b"hello" and got.checksum == 0 and got.append_at_ns == 0
    assert got.error is not None and got.error.startswith("invalid CRC for needle 8 (got ")
    assert got.error.endswith("), data on disk corrupted: needle data corrupted")


def test_needle_string_shows_what_go_read_before_it_stopped() -> None:
    """Go's Needle.String() in ReadBytes errors (EC reads): id+cookie, header size, and the data
    size, name, mime and compressed flag the body read had filled (answers seen from Go 4.48)."""
    raw = encode_needle(Needle.create(0x42, 0x01020304, b"checksummed", name="a.txt", mime="text/plain", gzipped=True),
                        VERSION3)
    size = int.from_bytes(raw[12:16], "big")
    assert needle_string(raw, size, VERSION3) == (
        "4201020304 Size:33, DataSize:11, Name:a.txt, Mime:text/plain Compressed:true")
    garbage = raw[:16] + b"\xff\xff\xff\xff" + raw[20:]
    assert needle_string(garbage, size, VERSION3) == (
        "4201020304 Size:33, DataSize:4294967295, Name:, Mime: Compressed:false")
    assert needle_string(raw, size + 8, VERSION3) == (  # another size: stopped at the header
        "4201020304 Size:33, DataSize:0, Name:, Mime: Compressed:false")
