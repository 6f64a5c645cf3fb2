"""Go's `http.DetectContentType`: the WHATWG MIME sniffing table as net/http applies it.

Go sniffs a response's Content-Type when a handler writes a non-empty body without setting one,
so the native server must reach the same answer from the same first 512 bytes.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["detect_content_type", "SNIFF_LEN"]

SNIFF_LEN = 512
_WS = frozenset(b"\t\n\x0c\r ")
_TT = frozenset(b" >")
_HTML = "text/html; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_OCTET = "application/octet-stream"

# Bytes that make data binary for the final text check (section 5, step 4).
_BINARY = bytes(
    b for b in range(256) if b <= 0x08 or b == 0x0B or 0x0E <= b <= 0x1A or 0x1C <= b <= 0x1F
)
_DROP_ALL = bytes.maketrans(b"", b"")


# Each matcher says where it looks first: `_AT_FIRST` (the first non-blank byte, which must be
# `<`) or the set of bytes it accepts at offset 0 (`None`: any), so that `detect_content_type`
# tries only the matchers the data's first bytes allow, in Go's order.
_AT_FIRST = "first"


def _starts(matcher: Callable[[bytes, int], str | None], first: frozenset[int] | str | None) -> Callable[[bytes, int], str | None]:
    matcher.starts = first  # type: ignore[attr-defined]
    return matcher


def _html(tag: bytes) -> Callable[[bytes, int], str | None]:
    upper = tag.upper()
    n = len(tag)

    def match(data: bytes, first: int) -> str | None:
        d = data[first:first + n + 1]
        if len(d) < n + 1:
            return None
        for i in range(n):
            b, db = upper[i], d[i]
            if 0x41 <= b <= 0x5A:
                db &= 0xDF
            if b != db:
                return None
        return _HTML if d[n] in _TT else None

    return _starts(match, _AT_FIRST)


def _exact(sig: bytes, ct: str) -> Callable[[bytes, int], str | None]:
    def match(data: bytes, first: int) -> str | None:
        return ct if data.startswith(sig) else None

    return _starts(match, frozenset((sig[0],)))


def _masked(mask: bytes, pat: bytes, ct: str, skip_ws: bool = False) -> Callable[[bytes, int], str | None]:
    n = len(pat)

    def match(data: bytes, first: int) -> str | None:
        d = data[first:] if skip_ws else data
        if len(d) < n:
            return None
        for i in range(n):
            if d[i] & mask[i] != pat[i]:
                return None
        return ct

    if skip_ws:
        assert pat[0] == 0x3C and mask[0] == 0xFF  # `<?xml`: looked for where the HTML tags are
        return _starts(match, _AT_FIRST)
    return _starts(match, frozenset(b for b in range(256) if b & mask[0] == pat[0]) if mask[0] else None)


def _mp4(data: bytes, first: int) -> str | None:  # the box size first: any byte
    if len(data) < 12:
        return None
    box = int.from_bytes(data[:4], "big")
    if len(data) < box or box % 4 != 0 or data[4:8] != b"ftyp":
        return None
    for st in range(8, box, 4):
        if st == 12:
            continue  # the major brand's version number
        if data[st:st + 3] == b"mp4":
            return "video/mp4"
    return None


def _text(data: bytes, first: int) -> str | None:
    rest = data[first:]
    return _TEXT if len(rest.translate(_DROP_ALL, _BINARY)) == len(rest) else None


_SIGNATURES: tuple[Callable[[bytes, int], str | None], ...] = (
    *(
        _html(t)
        for t in (
            b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV", b"<FONT",
            b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P", b"<!--",
        )
    ),
    _masked(b"\xff" * 5, b"<?xml", "text/xml; charset=utf-8", skip_ws=True),
    _exact(b"%PDF-", "application/pdf"),
    _exact(b"%!PS-Adobe-", "application/postscript"),
    _masked(b"\xff\xff\x00\x00", b"\xfe\xff\x00\x00", "text/plain; charset=utf-16be"),
    _masked(b"\xff\xff\x00\x00", b"\xff\xfe\x00\x00", "text/plain; charset=utf-16le"),
    _masked(b"\xff\xff\xff\x00", b"\xef\xbb\xbf\x00", "text/plain; charset=utf-8"),
    _exact(b"\x00\x00\x01\x00", "image/x-icon"),
    _exact(b"\x00\x00\x02\x00", "image/x-icon"),
    _exact(b"BM", "image/bmp"),
    _exact(b"GIF87a", "image/gif"),
    _exact(b"GIF89a", "image/gif"),
    _masked(b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff", b"RIFF\x00\x00\x00\x00WEBPVP", "image/webp"),
    _exact(b"\x89PNG\r\n\x1a\n", "image/png"),
    _exact(b"\xff\xd8\xff", "image/jpeg"),
    _masked(b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff", b"FORM\x00\x00\x00\x00AIFF", "audio/aiff"),
    _masked(b"\xff\xff\xff", b"ID3", "audio/mpeg"),
    _masked(b"\xff" * 5, b"OggS\x00", "application/ogg"),
    _masked(b"\xff" * 8, b"MThd\x00\x00\x00\x06", "audio/midi"),
    _masked(b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff", b"RIFF\x00\x00\x00\x00AVI ", "video/avi"),
    _masked(b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff", b"RIFF\x00\x00\x00\x00WAVE", "audio/wave"),
    _mp4,
    _exact(b"\x1a\x45\xdf\xa3", "video/webm"),
    _masked(b"\x00" * 34 + b"\xff\xff", b"\x00" * 34 + b"LP", "application/vnd.ms-fontobject"),
    _exact(b"\x00\x01\x00\x00", "font/ttf"),
    _exact(b"OTTO", "font/otf"),
    _exact(b"ttcf", "font/collection"),
    _exact(b"wOFF", "font/woff"),
    _exact(b"wOF2", "font/woff2"),
    _exact(b"\x1f\x8b\x08", "application/x-gzip"),
    _exact(b"PK\x03\x04", "application/zip"),
    _exact(b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
    _exact(b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
    _exact(b"\x00asm", "application/wasm"),
    _text,
)


_starts(_mp4, None)
_starts(_text, None)


def _candidates(byte0: int, lt_first: bool) -> tuple[Callable[[bytes, int], str | None], ...]:
    """The matchers that can match data starting with `byte0` (and `<` as its first non-blank
    byte or not), in Go's order."""
    out = []
    for sig in _SIGNATURES:
        starts = sig.starts  # type: ignore[attr-defined]
        if starts is _AT_FIRST:
            if lt_first:
                out.append(sig)
        elif starts is None or byte0 in starts:
            out.append(sig)
    return tuple(out)


# (first byte, first non-blank byte is `<`) -> the matchers worth trying: most data is tried
# against two or three instead of every one of the table's 50.
_BY_START = tuple((_candidates(b, False), _candidates(b, True)) for b in range(256))


def detect_content_type(data: bytes) -> str:
    """The MIME type Go's DetectContentType gives `data` (only the first 512 bytes count)."""
    data = bytes(data[:SNIFF_LEN])
    first = 0
    n = len(data)
    while first < n and data[first] in _WS:
        first += 1
    sigs = _BY_START[data[0]][first < n and data[first] == 0x3C] if n else _SIGNATURES
    for sig in sigs:
        ct = sig(data, first)
        if ct is not None:
            return ct
    return _OCTET

