"""MessageReader from bytes: whole, a byte at a time, trailing bytes, limits, flow accounting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weedpy.grpc import GrpcError, MessageReader, ProtocolError, Status, encode_message


def read_all(reader: MessageReader) -> list[bytes]:
    out = []
    while (m := reader.next_message()) is not None:
        out.append(m)
    return out


MESSAGES = [b"", b"a", b"hello world", bytes(range(256)) * 40]
STREAM = b"".join(encode_message(m) for m in MESSAGES)


def test_encode_message_prefix() -> None:
    assert encode_message(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert encode_message(b"", compressed=True) == b"\x01\x00\x00\x00\x00"


def test_whole_stream_at_once() -> None:
    r = MessageReader()
    r.feed(STREAM)
    assert read_all(r) == MESSAGES
    r.check_complete()


def test_a_byte_at_a_time() -> None:
    r = MessageReader()
    out = []
    for i in range(len(STREAM)):
        r.feed(STREAM[i : i + 1])
        out.extend(read_all(r))
    assert out == MESSAGES
    r.check_complete()


def test_trailing_partial_message_is_an_error_at_end_of_stream() -> None:
    r = MessageReader()
    r.feed(STREAM + b"\x00\x00\x00\x00\x09abc")
    assert read_all(r) == MESSAGES
    assert r.buffered == 8
    with pytest.raises(ProtocolError):
        r.check_complete()


def test_oversized_message_is_refused_from_its_prefix() -> None:
    r = MessageReader(max_length=10)
    r.feed(b"\x00\x00\x00\x00\x0b")  # 11 bytes announced, none sent yet
    with pytest.raises(GrpcError) as info:
        r.next_message()
    assert info.value.status == Status.RESOURCE_EXHAUSTED
    assert "11 vs. 10" in info.value.message


def test_message_at_the_limit_is_accepted() -> None:
    r = MessageReader(max_length=10)
    r.feed(encode_message(b"x" * 10))
    assert r.next_message() == b"x" * 10


def test_compressed_flag_without_encoding_is_refused() -> None:
    r = MessageReader()
    r.feed(encode_message(b"abc", compressed=True))
    with pytest.raises(ProtocolError):
        r.next_message()


def test_invalid_flag_is_refused() -> None:
    r = MessageReader(allow_compressed=True)
    r.feed(b"\x02\x00\x00\x00\x00")
    with pytest.raises(ProtocolError):
        r.next_message()


def test_a_message_is_released_only_when_the_next_one_is_asked_for() -> None:
    r = MessageReader()
    two = encode_message(b"one") + encode_message(b"two!")
    r.feed(two, flow_len=len(two) + 10)  # 10 bytes of padding
    assert r.releasable() == 10  # padding at once, data not yet
    assert r.next_message() == b"one"
    assert r.releasable() == 0  # "one" is still with the consumer
    assert r.next_message() == b"two!"
    assert r.releasable() == 8  # "one" consumed
    assert r.next_message() is None
    assert r.releasable() == 9  # "two!" consumed
    assert r.releasable() == 0


def test_a_partial_message_is_released_while_the_consumer_waits_for_it() -> None:
    """A message larger than the stream window must still arrive: its bytes go back as they come."""
    r = MessageReader()
    big = encode_message(b"x" * 1000)
    r.feed(big[:300])
    assert r.next_message() is None
    assert r.releasable() == 300
    r.feed(big[300:])
    assert r.next_message() == b"x" * 1000
    assert r.releasable() == 0
    assert r.next_message() is None
    assert r.releasable() == len(big) - 300


def test_release_all_returns_everything_once() -> None:
    r = MessageReader()
    r.feed(STREAM, flow_len=len(STREAM) + 3)
    r.next_message()
    assert r.release_all() == len(STREAM) + 3
    assert r.release_all() == 0


def test_take_buffered_hands_over_the_unparsed_rest() -> None:
    r = MessageReader()
    r.feed(encode_message(b"head") + b"\x00\x00\x00")
    assert r.next_message() == b"head"
    assert r.take_buffered() == b"\x00\x00\x00"
    assert r.buffered == 0
    r.check_complete()


@given(
    st.lists(st.binary(max_size=300), max_size=8),
    st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=30),
    st.lists(st.integers(min_value=0, max_value=255), min_size=1, max_size=30),
)
def test_any_chunking_yields_the_same_messages_and_releases_every_byte_once(
    messages: list[bytes], cuts: list[int], pads: list[int]
) -> None:
    data = b"".join(encode_message(m) for m in messages)
    r = MessageReader()
    out: list[bytes] = []
    released = 0
    flow_total = 0
    pos = i = 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        chunk = data[pos : pos + n]
        flow = len(chunk) + pads[i % len(pads)]
        r.feed(chunk, flow)
        flow_total += flow
        out.extend(read_all(r))
        released += r.releasable()
        assert released <= flow_total
        pos += n
        i += 1
    out.extend(read_all(r))
    released += r.releasable()
    assert out == messages
    assert released == flow_total
    assert r.release_all() == 0
