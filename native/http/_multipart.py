"""Go's mime/multipart reader over a request body, as ParseUpload drives it.

Behaviour that shows in replies is kept: the boundary/preamble rules, part header parsing
(net/textproto), the 4096-byte line window of Go's bufio.Reader ("bufio: buffer full"), and the
error texts ("multipart: NextPart: EOF", "unexpected EOF", "malformed MIME header line: ...").
The body is pulled through an async `source()` returning the next chunk (b"" at the end).
"""

from __future__ import annotations

import functools
import quopri
import re
from collections.abc import Awaitable, Callable

from native.gostrconv import quote
from native.http._mediatype import MediaTypeError, parse_media_type

__all__ = [
    "GoIOError",
    "EOF",
    "UNEXPECTED_EOF",
    "BufReader",
    "MultipartReader",
    "Part",
    "canonical_mime_key",
    "path_base",
]

PEEK_BUFFER_SIZE = 4096
MAX_MIME_HEADER_SIZE = 10 << 20
MAX_MIME_HEADERS = 10000

Source = Callable[[], Awaitable[bytes]]


class GoIOError(Exception):
    """An error value as Go prints it (io.EOF is "EOF")."""


EOF = GoIOError("EOF")
UNEXPECTED_EOF = GoIOError("unexpected EOF")
BUFFER_FULL = GoIOError("bufio: buffer full")
MESSAGE_TOO_LARGE = GoIOError("multipart: message too large")

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_BAD_VALUE_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class BufReader:
    """bufio.Reader semantics where they are visible, over an async chunk source."""

    __slots__ = ("_src", "_buf", "_r", "_err")

    def __init__(self, source: Source) -> None:
        self._src = source
        self._buf = bytearray()
        self._r = 0
        self._err: GoIOError | None = None

    def buffered(self) -> int:
        return len(self._buf) - self._r

    async def fill(self) -> bool:
        """Read one more chunk; False (and a pending error) when the source is done."""
        if self._err is not None:
            return False
        try:
            chunk = await self._src()
        except GoIOError as exc:
            self._err = exc
            return False
        if not chunk:
            self._err = EOF
            return False
        if self._r:
            del self._buf[:self._r]
            self._r = 0
        self._buf += chunk
        return True

    async def next_chunk(self) -> bytes | None:
        """With nothing buffered: the source's next chunk itself, not buffered (so that a part's
        data can be taken without copying it through the buffer); None, with the error pending,
        when the source is done. `keep` buffers what the caller does not take."""
        if self._err is not None:
            return None
        try:
            chunk = await self._src()
        except GoIOError as exc:
            self._err = exc
            return None
        if not chunk:
            self._err = EOF
            return None
        return chunk

    def keep(self, rest: bytes) -> None:
        """Buffer the untaken end of a chunk from `next_chunk` (the buffer is empty then)."""
        self._buf = bytearray(rest)
        self._r = 0

    def pending_error(self) -> GoIOError | None:
        return self._err if self.buffered() == 0 else None

    async def read_slice(self) -> tuple[bytes, GoIOError | None]:
        start = 0
        while True:
            avail = self.buffered()
            window = min(avail, PEEK_BUFFER_SIZE)
            i = self._buf.find(b"\n", self._r + start, self._r + window)
            if i >= 0:
                line = bytes(self._buf[self._r:i + 1])
                self._r = i + 1
                return line, None
            if avail >= PEEK_BUFFER_SIZE:
                line = bytes(self._buf[self._r:self._r + PEEK_BUFFER_SIZE])
                self._r += PEEK_BUFFER_SIZE
                return line, BUFFER_FULL
            if self._err is not None:
                line = bytes(self._buf[self._r:])
                self._r = len(self._buf)
                return line, self._err
            start = window
            await self.fill()

    async def read_line(self) -> tuple[bytes | None, bool, GoIOError | None]:
        """bufio.ReadLine: (line without EOL, is_prefix, err)."""
        line, err = await self.read_slice()
        if err is BUFFER_FULL:
            if line.endswith(b"\r"):
                self._r -= 1
                line = line[:-1]
            return line, True, None
        if not line:
            return None, False, err
        if line.endswith(b"\n"):
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        return line, False, None

    async def peek_byte(self) -> int | None:
        while self.buffered() < 1:
            if not await self.fill():
                return None
        return self._buf[self._r]

    async def read_byte(self) -> int | None:
        b = await self.peek_byte()
        if b is not None:
            self._r += 1
        return b

    def unread_byte(self) -> None:
        self._r -= 1

    def consume(self, n: int) -> bytes:
        data = bytes(self._buf[self._r:self._r + n])
        self._r += n
        return data


@functools.lru_cache(maxsize=4096)
def canonical_mime_key(k: bytes) -> str | None:
    """textproto's canonicalMIMEHeaderKey; None when the key is invalid."""
    if not k:
        return None
    no_canon = False
    for c in k:
        if c in _TOKEN:
            continue
        if c == 0x20:
            no_canon = True
            continue
        return None
    if no_canon:
        return k.decode("latin-1")
    out = bytearray(k)
    upper = True
    for i, c in enumerate(out):
        if upper and 0x61 <= c <= 0x7A:
            c -= 32
        elif not upper and 0x41 <= c <= 0x5A:
            c += 32
        out[i] = c
        upper = c == 0x2D
    return out.decode("latin-1")


def _trim(b: bytes) -> bytes:
    return b.strip(b" \t\n\r")


async def _read_line_slice(br: BufReader, lim: int) -> tuple[bytes | None, GoIOError | None]:
    line = bytearray()
    first = True
    while True:
        piece, more, err = await br.read_line()
        if err is not None:
            return None, err
        assert piece is not None
        if lim >= 0 and len(line) + len(piece) > lim:
            return None, MESSAGE_TOO_LARGE
        if first and not more:
            return piece, None
        first = False
        line += piece
        if not more:
            return bytes(line), None


async def read_mime_header(br: BufReader) -> tuple[dict[str, list[str]], GoIOError | None]:
    """textproto.readMIMEHeader with multipart's limits."""
    m: dict[str, list[str]] = {}
    max_memory = MAX_MIME_HEADER_SIZE - 400
    max_headers = MAX_MIME_HEADERS
    first = await br.peek_byte()
    if first is not None and first in (0x20, 0x09):
        line, err = await _read_line_slice(br, 80)
        if err is not None:
            return m, err
        return m, GoIOError(f"malformed MIME header initial line: {quote(line.decode('latin-1'))}")
    while True:
        # readContinuedLineSlice
        line, err = await _read_line_slice(br, max_memory)
        if err is not None:
            return m, err
        assert line is not None
        if not line:
            return m, None
        if b":" not in line:
            return m, GoIOError(f"malformed MIME header: missing colon: {quote(line.decode('latin-1'))}")
        buf = bytearray(_trim(line))
        lim = max_memory - len(buf)
        cont_err: GoIOError | None = None
        while True:
            n = 0
            while True:
                c = await br.read_byte()
                if c is None:
                    break
                if c not in (0x20, 0x09):
                    br.unread_byte()
                    break
                n += 1
            if n == 0:
                break
            buf += b" "
            if len(buf) >= lim:
                return m, MESSAGE_TOO_LARGE
            more, e2 = await _read_line_slice(br, lim - len(buf))
            if e2 is not None:
                cont_err = None
                break
            assert more is not None
            buf += _trim(more)
        kv = bytes(buf)
        k, _, v = kv.partition(b":")
        key = canonical_mime_key(k)
        if key is None or _BAD_VALUE_RE.search(v):
            return m, GoIOError(f"malformed MIME header line: {quote(kv.decode('latin-1'))}")
        max_headers -= 1
        if max_headers < 0:
            return {}, MESSAGE_TOO_LARGE
        value = v.lstrip(b" \t").decode("latin-1")
        if key not in m:
            max_memory -= len(key) + 200
        max_memory -= len(value)
        if max_memory < 0:
            return m, MESSAGE_TOO_LARGE
        m.setdefault(key, []).append(value)
        if cont_err is not None:
            return m, cont_err


def _match_after_prefix(buf: bytes, plen: int, read_err: GoIOError | None) -> int:
    if len(buf) == plen:
        return 1 if read_err is not None else 0
    c = buf[plen]
    if c in b" \t\r\n":
        return 1
    if c == 0x2D:
        if len(buf) == plen + 1:
            return -1 if read_err is not None else 0
        if buf[plen + 1] == 0x2D:
            return 1
    return -1


def _scan_until_boundary(buf: bytes | bytearray, start: int, dash_b: bytes, nl_dash_b: bytes, total: int,
                         read_err: GoIOError | None) -> tuple[int, GoIOError | None]:
    """Go's multipart scanUntilBoundary over `buf[start:]`, read in place: how many bytes from
    `start` are part data, and the error once the boundary (or the source's end) is there.
    The tests that look past a match need at most two bytes after it, so only those are
    sliced: a 256 KiB part costs no copy here."""
    avail = len(buf) - start
    if total == 0:
        if buf.startswith(dash_b, start):
            m = _match_after_prefix(buf[start:start + len(dash_b) + 2], len(dash_b), read_err)
            if m == -1:
                return len(dash_b), None
            if m == 0:
                return 0, None
            return 0, EOF
        if avail < len(dash_b) and dash_b.startswith(buf[start:]):
            return 0, read_err
    i = buf.find(nl_dash_b, start)
    if i >= 0:
        m = _match_after_prefix(buf[i:i + len(nl_dash_b) + 2], len(nl_dash_b), read_err)
        if m == -1:
            return i - start + len(nl_dash_b), None
        if m == 0:
            return i - start, None
        return i - start, EOF
    if avail <= len(nl_dash_b) and nl_dash_b.startswith(buf[start:]):
        return 0, read_err
    i = buf.rfind(nl_dash_b[:1], start)
    if i >= 0 and len(buf) - i <= len(nl_dash_b) and nl_dash_b.startswith(buf[i:]):
        return i - start, None
    return avail, read_err


class Part:
    __slots__ = ("header", "_mr", "_total", "_done", "_err", "_read_err", "_qp")

    def __init__(self, mr: "MultipartReader", header: dict[str, list[str]]) -> None:
        self.header = header
        self._mr = mr
        self._total = 0
        self._done = False
        self._err: GoIOError | None = None
        self._read_err: GoIOError | None = None
        self._qp = False
        cte = header.get("Content-Transfer-Encoding")
        if cte and cte[0].lower() == "quoted-printable":
            del header["Content-Transfer-Encoding"]
            self._qp = True

    def get(self, key: str) -> str:
        vs = self.header.get(key)
        return vs[0] if vs else ""

    def file_name(self) -> str:
        try:
            _, params = parse_media_type(self.get("Content-Disposition"))
        except MediaTypeError:
            return ""
        fn = params.get("filename", "")
        if fn == "":
            return ""
        return path_base(fn)

    async def read(self, limit: int) -> tuple[bytes, GoIOError | None]:
        """Up to `limit` data bytes; err is None at the part's end (or at the limit). The data is
        scanned where it was buffered and copied out once per chunk taken."""
        out: list[bytes] = []
        got = 0
        br = self._mr.br
        while got < limit:
            if self._err is not None:
                break
            if br.buffered() == 0 and br._err is None:  # a chunk of data taken whole, not via the buffer
                chunk = await br.next_chunk()
                if chunk is None:
                    self._read_err = UNEXPECTED_EOF if br._err is EOF else br._err
                    continue
                n, err = _scan_until_boundary(chunk, 0, self._mr.dash_b, self._mr.nl_dash_b, self._total, None)
                if n != len(chunk) or err is not None or n > limit - got:
                    br.keep(chunk)  # a boundary (or the limit) in it: the buffered path below
                    continue
                out.append(chunk)
                got += n
                self._total += n
                continue
            n, err = _scan_until_boundary(br._buf, br._r, self._mr.dash_b, self._mr.nl_dash_b, self._total,
                                          self._read_err)
            if n == 0 and err is None:
                if not await br.fill():
                    self._read_err = UNEXPECTED_EOF if br._err is EOF else br._err
                continue
            take = min(n, limit - got)
            out.append(br.consume(take))
            got += take
            self._total += take
            if take < n:
                break
            if err is not None:
                self._err = err
                break
        err = self._err if self._err is not EOF and got < limit else None
        data = b"".join(out)
        if self._qp:
            data = quopri.decodestring(data)
        return data, err

    async def discard(self) -> None:
        while True:
            chunk, err = await self.read(1 << 20)
            if err is not None or not chunk or self._err is not None:
                return


def path_base(p: str) -> str:
    """Go's path.Base (filepath.Base on Unix)."""
    if p == "":
        return "."
    p = p.rstrip("/")
    if p == "":
        return "/"
    return p[p.rfind("/") + 1:]


class MultipartReader:
    def __init__(self, source: Source, boundary: str) -> None:
        b = b"\r\n--" + boundary.encode("latin-1") + b"--"
        self.br = BufReader(source)
        self.nl = b[:2]
        self.nl_dash_b = b[:-2]
        self.dash_b_dash = b[2:]
        self.dash_b = b[2:-2]
        self.current: Part | None = None
        self.parts_read = 0

    def _is_final(self, line: bytes) -> bool:
        if not line.startswith(self.dash_b_dash):
            return False
        rest = line[len(self.dash_b_dash):].lstrip(b" \t")
        return len(rest) == 0 or rest == self.nl

    def _is_delimiter(self, line: bytes) -> bool:
        if not line.startswith(self.dash_b):
            return False
        rest = line[len(self.dash_b):].lstrip(b" \t")
        if self.parts_read == 0 and rest == b"\n":
            self.nl = self.nl[1:]
            self.nl_dash_b = self.nl_dash_b[1:]
        return rest == self.nl

    async def next_part(self) -> Part:
        """The next part; raises GoIOError (EOF after the final boundary)."""
        if self.current is not None:
            await self.current.discard()
        if self.dash_b == b"--":
            raise GoIOError("multipart: boundary is empty")
        expect_new = False
        while True:
            line, err = await self.br.read_slice()
            if err is EOF and self._is_final(line):
                raise EOF
            if err is not None:
                raise GoIOError(f"multipart: NextPart: {err}")
            if self._is_delimiter(line):
                self.parts_read += 1
                header, herr = await read_mime_header(self.br)
                if herr is not None:
                    raise herr
                self.current = Part(self, header)
                return self.current
            if self._is_final(line):
                raise EOF
            if expect_new:
                raise GoIOError(f"multipart: expecting a new Part; got line {quote(line.decode('latin-1'))}")
            if self.parts_read == 0:
                continue
            if line == self.nl:
                expect_new = True
                continue
            raise GoIOError(f"multipart: unexpected line in Next(): {quote(line.decode('latin-1'))}")
