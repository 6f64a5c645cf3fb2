"""Go's compress/gzip at BestSpeed, byte for byte, as the weed 4.48 binary (Go 1.27) writes it.

Go's volume server gzips compressible uploads before storing them, so the stored bytes, their
CRC (the ETag) and the record size depend on Go's exact encoder. Go 1.27's compress/flate level 1
is a port of klauspost/compress: a 5-byte-hash matcher over a sliding history (fastEncL1), blocks
of 65535 bytes, and a bit writer that may keep one Huffman table open across blocks, estimates
sizes (including a float32 entropy estimate) to choose stored, fixed, Huffman-only or dynamic
blocks, and ends the stream with an empty fixed block. zlib's level 1 gives different bytes.
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["go_deflate", "go_gzip"]

MAX_STORE_BLOCK = 65535
MAX_MATCH_OFFSET = 1 << 15
BASE_MATCH_LENGTH = 3
BASE_MATCH_OFFSET = 1
TABLE_BITS = 15
TABLE_SIZE = 1 << TABLE_BITS
ALLOC_HISTORY = MAX_STORE_BLOCK * 5
BUFFER_RESET = (1 << 31) - ALLOC_HISTORY - MAX_STORE_BLOCK - 1
LITERAL_COUNT = 286
OFFSET_CODE_COUNT = 30
END_BLOCK = 256
LENGTH_CODES_START = 257
CODEGEN_COUNT = 19
BAD_CODE = 255
MAX_PREDEFINED_TOKENS = 250
MATCH_TYPE = 1 << 30
LENGTH_SHIFT = 22
OFFSET_MASK = (1 << LENGTH_SHIFT) - 1
LOG_NEW_TABLE_PENALTY = 7
GUESS_HEADER_BITS = 70 * 8
MAXI32 = (1 << 31) - 1
M64 = (1 << 64) - 1
PRIME5 = 889523592379

LENGTH_EXTRA_BITS = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0] + [0, 0, 0]
LENGTH_BASE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
               160, 192, 224, 255, 0, 0, 0]
OFFSET_EXTRA_BITS = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
                     13, 13, 14, 14]
OFFSET_BASE = [0x0, 0x1, 0x2, 0x3, 0x4, 0x6, 0x8, 0xC, 0x10, 0x18, 0x20, 0x30, 0x40, 0x60, 0x80, 0xC0,
               0x100, 0x180, 0x200, 0x300, 0x400, 0x600, 0x800, 0xC00, 0x1000, 0x1800, 0x2000, 0x3000,
               0x4000, 0x6000, 0x8000, 0xC000]
CODEGEN_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]


def _tables() -> tuple[list[int], list[int]]:
    lc = []
    for length in range(256):
        code = 0
        for i in range(29):
            if length >= LENGTH_BASE[i]:
                code = i
        lc.append(code)
    oc = []
    for o in range(256):
        c = 0
        for i in range(16):
            if o >= OFFSET_BASE[i]:
                c = i
        oc.append(c)
    return lc, oc


LENGTH_CODES, OFFSET_CODES = _tables()


def offset_code(off: int) -> int:
    if off < 256:
        return OFFSET_CODES[off]
    return OFFSET_CODES[(off >> 7) & 0xFF] + 14


# -- float32 arithmetic (Go's EstimatedBits) ------------------------------------------------------

_F = struct.Struct("<f")
_I = struct.Struct("<i")
_U = struct.Struct("<I")


def f32(x: float) -> float:
    return _F.unpack(_F.pack(x))[0]


_C1, _C2, _C3 = f32(-0.34484843), f32(2.02466578), f32(0.67487759)


def _fast_log2(val: float) -> float:
    ux = _I.unpack(_F.pack(val))[0]
    log2 = f32(float(((ux >> 23) & 255) - 128))
    ux &= -0x7F800001
    ux += 127 << 23
    uval = _F.unpack(_U.pack(ux & 0xFFFFFFFF))[0]
    t = f32(f32(f32(f32(_C1 * uval) + _C2) * uval) - _C3)
    return f32(log2 + t)


def _term(v: int, inv_total: float) -> float:
    n = f32(float(v))
    x = f32(-_fast_log2(f32(n * inv_total)))
    x = min(f32(15.0), max(f32(1.0), x))
    return f32(x * n)


# -- tokens ----------------------------------------------------------------------------------------

class _Tokens:
    __slots__ = ("lit_hist", "extra_hist", "off_hist", "toks")

    def __init__(self) -> None:
        self.lit_hist = [0] * 256
        self.extra_hist = [0] * 32
        self.off_hist = [0] * 32
        self.toks: list[int] = []

    @property
    def n(self) -> int:
        return len(self.toks)

    def add_eob(self) -> None:
        self.toks.append(END_BLOCK)
        self.extra_hist[0] += 1

    def estimated_bits(self) -> int:
        shannon = f32(0.0)
        bits = 0
        n_matches = 0
        total = self.n
        if total > 0:
            inv = f32(1.0 / f32(float(total)))
            for v in self.lit_hist:
                if v > 0:
                    shannon = f32(shannon + _term(v, inv))
            shannon = f32(shannon + 15)
            for i in range(LITERAL_COUNT - 256 - 1):
                v = self.extra_hist[1 + i]
                if v > 0:
                    shannon = f32(shannon + _term(v, inv))
                    bits += LENGTH_EXTRA_BITS[i & 31] * v
                    n_matches += v
        if n_matches > 0:
            inv = f32(1.0 / f32(float(n_matches)))
            for i in range(OFFSET_CODE_COUNT):
                v = self.off_hist[i]
                if v > 0:
                    shannon = f32(shannon + _term(v, inv))
                    bits += OFFSET_EXTRA_BITS[i & 31] * v
        return int(shannon) + bits


# -- Huffman codes (hcode = len | code << 8) -------------------------------------------------------

def _reverse(x: int, b: int) -> int:
    return int(format(x, f"0{b}b")[::-1], 2) if b else 0


class _Encoder:
    __slots__ = ("codes",)

    def __init__(self, size: int) -> None:
        self.codes = [0] * size

    def bit_length(self, freq: list[int]) -> int:
        codes = self.codes
        return sum(f * (codes[i] & 0xFF) for i, f in enumerate(freq) if f)

    def can_encode_len(self, freq: list[int]) -> int:
        total = 0
        codes = self.codes
        for i, f in enumerate(freq):
            if f:
                c = codes[i]
                if c == 0:
                    return MAXI32
                total += f * (c & 0xFF)
        return total

    def generate(self, freq: list[int], max_bits: int) -> None:
        codes = self.codes
        lst = []
        for i, f in enumerate(freq):
            if f:
                lst.append((f, i))
            else:
                codes[i] = 0
        if len(lst) <= 2:
            for idx, (_, lit) in enumerate(lst):
                codes[lit] = 1 | (idx << 8)
            return
        lst.sort()
        bit_count = _bit_counts([f for f, _ in lst], max_bits)
        code = 0
        remaining = lst
        for n, bits in enumerate(bit_count):
            code <<= 1
            if n == 0 or bits == 0:
                continue
            chunk = sorted(lit for _, lit in remaining[len(remaining) - bits:])
            for lit in chunk:
                codes[lit] = n | (_reverse(code, n) << 8)
                code += 1
            remaining = remaining[:len(remaining) - bits]


def _bit_counts(freqs: list[int], max_bits: int) -> list[int]:
    n = len(freqs)
    fr = freqs + [0xFFFF]
    real = n  # index n is the sentinel (literal 0xFFFF)
    if max_bits > n - 1:
        max_bits = n - 1
    levels = [[0, 0, 0, 0, 0] for _ in range(17)]  # level, lastFreq, nextCharFreq, nextPairFreq, needed
    leaf = [[0] * 16 for _ in range(16)]
    for level in range(1, max_bits + 1):
        levels[level] = [level, fr[1], fr[2], fr[0] + fr[1], 0]
        leaf[level][level] = 2
        if level == 1:
            levels[level][3] = MAXI32
    levels[max_bits][4] = 2 * n - 4
    level = max_bits
    while level < 16:
        l = levels[level]
        if l[3] == MAXI32 and l[2] == MAXI32:
            l[4] = 0
            levels[level + 1][3] = MAXI32
            level += 1
            continue
        prev_freq = l[1]
        if l[2] < l[3]:
            nn = leaf[level][level] + 1
            l[1] = l[2]
            leaf[level][level] = nn
            l[2] = fr[nn] if nn < real else MAXI32
        else:
            l[1] = l[3]
            save = leaf[level][level]
            leaf[level] = list(leaf[level - 1])
            leaf[level][level] = save
            levels[l[0] - 1][4] = 2
        l[4] -= 1
        if l[4] == 0:
            if l[0] == max_bits:
                break
            levels[l[0] + 1][3] = prev_freq + l[1]
            level += 1
        else:
            while levels[level - 1][4] > 0:
                level -= 1
    bit_count = [0] * (max_bits + 1)
    bits = 1
    counts = leaf[max_bits]
    for lv in range(max_bits, 0, -1):
        bit_count[bits] = counts[lv] - counts[lv - 1]
        bits += 1
    return bit_count


def _fixed_literal() -> _Encoder:
    h = _Encoder(LITERAL_COUNT)
    for ch in range(LITERAL_COUNT):
        if ch < 144:
            bits, size = ch + 48, 8
        elif ch < 256:
            bits, size = ch + 400 - 144, 9
        elif ch < 280:
            bits, size = ch - 256, 7
        else:
            bits, size = ch + 192 - 280, 8
        h.codes[ch] = size | (_reverse(bits, size) << 8)
    return h


def _fixed_offset() -> _Encoder:
    h = _Encoder(30)
    for ch in range(30):
        h.codes[ch] = 5 | (_reverse(ch, 5) << 8)
    return h


FIXED_LIT = _fixed_literal()
FIXED_OFF = _fixed_offset()
HUFF_OFFSET = _Encoder(OFFSET_CODE_COUNT)
HUFF_OFFSET.generate([1] + [0] * (OFFSET_CODE_COUNT - 1), 15)


# -- bit writer -------------------------------------------------------------------------------------

class _BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self.bits = 0
        self.nbits = 0
        self.wrote_huffman = False
        self.lit_enc = _Encoder(LITERAL_COUNT)
        self.tmp_lit_enc = _Encoder(LITERAL_COUNT)
        self.off_enc = _Encoder(OFFSET_CODE_COUNT)
        self.cg_enc = _Encoder(CODEGEN_COUNT)
        self.prev_header = 0
        self.lit_freq = [0] * (LENGTH_CODES_START + 32)
        self.off_freq = [0] * 32
        self.codegen_freq = [0] * CODEGEN_COUNT
        self.codegen: list[int] = []

    # raw bits
    def write_bits(self, b: int, nb: int) -> None:
        self.bits |= b << self.nbits
        self.nbits += nb
        if self.nbits >= 512:
            self._spill()

    def _spill(self) -> None:
        k = self.nbits >> 3
        self.out += (self.bits & ((1 << (k * 8)) - 1)).to_bytes(k, "little")
        self.bits >>= k * 8
        self.nbits -= k * 8

    def write_code(self, c: int) -> None:
        self.write_bits(c >> 8, c & 0xFF)

    def flush(self) -> None:
        if self.prev_header > 0:
            self.write_code(self.lit_enc.codes[END_BLOCK])
            self.prev_header = 0
        n = (self.nbits + 7) >> 3
        if n:
            self.out += (self.bits & ((1 << (n * 8)) - 1)).to_bytes(n, "little")
        self.bits = 0
        self.nbits = 0

    def write_bytes(self, data: bytes) -> None:
        self._spill()
        assert self.nbits == 0
        self.out += data

    # headers
    def stored_header(self, length: int, eof: bool) -> None:
        if self.prev_header > 0:
            self.write_code(self.lit_enc.codes[END_BLOCK])
            self.prev_header = 0
        if length == 0 and eof:
            self.fixed_header(True)
            self.write_bits(0, 7)
            self.flush()
            return
        self.write_bits(1 if eof else 0, 3)
        self.flush()
        self.write_bits(length, 16)
        self.write_bits(length ^ 0xFFFF, 16)

    def fixed_header(self, eof: bool) -> None:
        if self.prev_header > 0:
            self.write_code(self.lit_enc.codes[END_BLOCK])
            self.prev_header = 0
        self.write_bits(3 if eof else 2, 3)

    def generate_codegen(self, num_lit: int, num_off: int, lit_enc: _Encoder, off_enc: _Encoder) -> None:
        freq = [0] * CODEGEN_COUNT
        cg = [lit_enc.codes[i] & 0xFF for i in range(num_lit)] + [off_enc.codes[i] & 0xFF for i in range(num_off)]
        cg.append(BAD_CODE)
        out: list[int] = []
        size = cg[0]
        count = 1
        i = 1
        while size != BAD_CODE:
            nxt = cg[i]
            i += 1
            if nxt == size:
                count += 1
                continue
            if size != 0:
                out.append(size)
                freq[size] += 1
                count -= 1
                while count >= 3:
                    n = min(6, count)
                    out += (16, n - 3)
                    freq[16] += 1
                    count -= n
            else:
                while count >= 11:
                    n = min(138, count)
                    out += (18, n - 11)
                    freq[18] += 1
                    count -= n
                if count >= 3:
                    out += (17, count - 3)
                    freq[17] += 1
                    count = 0
            count -= 1
            while count >= 0:
                out.append(size)
                freq[size] += 1
                count -= 1
            size = nxt
            count = 1
        out.append(BAD_CODE)
        self.codegen = out
        self.codegen_freq = freq

    def codegens(self) -> int:
        f = self.codegen_freq
        n = CODEGEN_COUNT
        while n > 4 and f[CODEGEN_ORDER[n - 1]] == 0:
            n -= 1
        return n

    def header_size(self) -> tuple[int, int]:
        f = self.codegen_freq
        n = self.codegens()
        return 3 + 5 + 5 + 4 + 3 * n + self.cg_enc.bit_length(f) + f[16] * 2 + f[17] * 3 + f[18] * 7, n

    def dynamic_size(self, lit_enc: _Encoder, off_enc: _Encoder, extra: int) -> tuple[int, int]:
        header, n = self.header_size()
        return header + lit_enc.bit_length(self.lit_freq) + off_enc.bit_length(self.off_freq) + extra, n

    def extra_bit_size(self) -> int:
        total = 0
        for i, n in enumerate(self.lit_freq[257:LITERAL_COUNT]):
            total += n * LENGTH_EXTRA_BITS[i & 31]
        for i, n in enumerate(self.off_freq[:OFFSET_CODE_COUNT]):
            total += n * OFFSET_EXTRA_BITS[i & 31]
        return total

    def fixed_size(self, extra: int) -> int:
        return 3 + FIXED_LIT.bit_length(self.lit_freq) + FIXED_OFF.bit_length(self.off_freq) + extra

    def dynamic_header(self, num_lit: int, num_off: int, num_cg: int, eof: bool) -> None:
        self.write_bits(5 if eof else 4, 3)
        self.write_bits(num_lit - 257, 5)
        self.write_bits(num_off - 1, 5)
        self.write_bits(num_cg - 4, 4)
        cgc = self.cg_enc.codes
        for i in range(num_cg):
            self.write_bits(cgc[CODEGEN_ORDER[i]] & 0xFF, 3)
        cg = self.codegen
        i = 0
        while True:
            word = cg[i]
            i += 1
            if word == BAD_CODE:
                break
            self.write_code(cgc[word])
            if word == 16:
                self.write_bits(cg[i], 2)
                i += 1
            elif word == 17:
                self.write_bits(cg[i], 3)
                i += 1
            elif word == 18:
                self.write_bits(cg[i], 7)
                i += 1

    def can_reuse(self, t: _Tokens) -> bool:
        oc = self.off_enc.codes
        for i in range(OFFSET_CODE_COUNT):
            if t.off_hist[i] and oc[i] == 0:
                return False
        lc = self.lit_enc.codes
        for i in range(LITERAL_COUNT - 256):
            if t.extra_hist[i] and lc[256 + i] == 0:
                return False
        for i in range(256):
            if t.lit_hist[i] and lc[i] == 0:
                return False
        return True

    def index_tokens(self, t: _Tokens) -> tuple[int, int]:
        self.lit_freq = list(t.lit_hist) + list(t.extra_hist)
        self.off_freq = list(t.off_hist)
        if t.n == 0:
            return 0, 0
        num_lit = len(self.lit_freq)
        while self.lit_freq[num_lit - 1] == 0:
            num_lit -= 1
        num_off = len(self.off_freq)
        while num_off > 0 and self.off_freq[num_off - 1] == 0:
            num_off -= 1
        if num_off == 0:
            self.off_freq[0] = 1
            num_off = 1
        return num_lit, num_off

    def generate(self) -> None:
        self.lit_enc.generate(self.lit_freq[:LITERAL_COUNT], 15)
        self.off_enc.generate(self.off_freq[:OFFSET_CODE_COUNT], 15)

    def write_tokens(self, toks: list[int], lc: list[int], oc: list[int]) -> None:
        if not toks:
            return
        defer_eob = toks[-1] == END_BLOCK
        if defer_eob:
            toks = toks[:-1]
        bits, nbits = self.bits, self.nbits
        parts = []
        for t in toks:
            if t < 256:
                c = lc[t]
                bits |= (c >> 8) << nbits
                nbits += c & 0xFF
            else:
                length = (t >> LENGTH_SHIFT) & 0xFF
                lcode = LENGTH_CODES[length] & 31
                c = lc[LENGTH_CODES_START + lcode]
                bits |= (c >> 8) << nbits
                nbits += c & 0xFF
                if lcode >= 8:
                    bits |= (length - LENGTH_BASE[lcode]) << nbits
                    nbits += LENGTH_EXTRA_BITS[lcode]
                off = t & OFFSET_MASK
                ocode = (off >> 16) & 31
                c = oc[ocode]
                bits |= (c >> 8) << nbits
                nbits += c & 0xFF
                if ocode >= 4:
                    bits |= ((off - OFFSET_BASE[ocode]) & 0xFFFF) << nbits
                    nbits += OFFSET_EXTRA_BITS[ocode]
            if nbits >= 4096:
                k = nbits >> 3
                parts.append((bits & ((1 << (k * 8)) - 1)).to_bytes(k, "little"))
                bits >>= k * 8
                nbits -= k * 8
        self.out += b"".join(parts)
        self.bits, self.nbits = bits, nbits
        if defer_eob:
            self.write_code(lc[END_BLOCK])

    # blocks
    def block_dynamic(self, t: _Tokens, eof: bool, data: bytes, sync: bool) -> None:
        sync = sync or eof
        if sync:
            t.add_eob()
        else:
            t.extra_hist[0] = 1
        if (self.wrote_huffman or eof) and self.prev_header > 0:
            self.write_code(self.lit_enc.codes[END_BLOCK])
            self.prev_header = 0
            self.wrote_huffman = False
        if self.prev_header > 0 and not self.can_reuse(t):
            self.write_code(self.lit_enc.codes[END_BLOCK])
            self.prev_header = 0
        num_lit, num_off = self.index_tokens(t)
        extra = 0
        storable = len(data) <= MAX_STORE_BLOCK
        ssize = (len(data) + 5) * 8
        if storable or self.prev_header > 0:
            extra = self.extra_bit_size()
        size = 0
        if self.prev_header > 0:
            new_size = self.prev_header + t.estimated_bits()
            new_size += (self.lit_enc.codes[END_BLOCK] & 0xFF) + (new_size >> LOG_NEW_TABLE_PENALTY)
            reuse_size = self.lit_enc.bit_length(self.lit_freq) + self.off_enc.bit_length(self.off_freq) + extra
            if new_size < reuse_size:
                self.write_code(self.lit_enc.codes[END_BLOCK])
                size = new_size
                self.prev_header = 0
            else:
                size = reuse_size
            if t.n < MAX_PREDEFINED_TOKENS:
                pre = self.fixed_size(extra) + 7
                if pre < size:
                    if storable and ssize <= size:
                        self.stored_header(len(data), eof)
                        self.write_bytes(data)
                        return
                    self.fixed_header(eof)
                    if not sync:
                        t.add_eob()
                    self.write_tokens(t.toks, FIXED_LIT.codes, FIXED_OFF.codes)
                    return
            if storable and ssize <= size:
                self.stored_header(len(data), eof)
                self.write_bytes(data)
                return
        if self.prev_header == 0:
            self.lit_freq[END_BLOCK] = 1
            self.generate()
            self.generate_codegen(num_lit, num_off, self.lit_enc, self.off_enc)
            self.cg_enc.generate(self.codegen_freq, 7)
            size, num_cg = self.dynamic_size(self.lit_enc, self.off_enc, extra)
            if t.n < MAX_PREDEFINED_TOKENS:
                pre = self.fixed_size(extra)
                if pre <= size:
                    if storable and ssize <= pre:
                        self.stored_header(len(data), eof)
                        self.write_bytes(data)
                        return
                    self.fixed_header(eof)
                    if not sync:
                        t.add_eob()
                    self.write_tokens(t.toks, FIXED_LIT.codes, FIXED_OFF.codes)
                    return
            if storable and ssize <= size:
                self.stored_header(len(data), eof)
                self.write_bytes(data)
                return
            self.dynamic_header(num_lit, num_off, num_cg, eof)
            if not sync:
                self.prev_header = self.header_size()[0]
            self.wrote_huffman = False
        if sync:
            self.prev_header = 0
        self.write_tokens(t.toks, self.lit_enc.codes, self.off_enc.codes)

    def block_huff(self, eof: bool, data: bytes, sync: bool) -> None:
        self.lit_freq = [0] * (LENGTH_CODES_START + 32)
        if not self.wrote_huffman:
            self.off_freq = [0] * 32
        lf = self.lit_freq
        for b in range(256):
            lf[b] = data.count(bytes((b,)))
        storable = len(data) <= MAX_STORE_BLOCK
        ssize = (len(data) + 5) * 8
        if storable and len(data) > 1024:
            acc = 0.0
            avg = float(len(data)) / 256
            mx = float(len(data) * 2)
            for v in lf[:256]:
                diff = float(v) - avg
                acc += diff * diff
                if acc >= mx:
                    break
            if acc < mx:
                self.stored_header(len(data), eof)
                self.write_bytes(data)
                return
        lf[END_BLOCK] = 1
        self.tmp_lit_enc.generate(lf[:END_BLOCK + 1], 15)
        est = self.tmp_lit_enc.can_encode_len(lf[:END_BLOCK + 1])
        if est < MAXI32:
            est += self.prev_header
            if self.prev_header == 0:
                est += GUESS_HEADER_BITS
            est += est >> LOG_NEW_TABLE_PENALTY
        if storable and ssize <= est:
            self.stored_header(len(data), eof)
            self.write_bytes(data)
            return
        if self.prev_header > 0:
            reuse = self.lit_enc.can_encode_len(lf[:256])
            if est < reuse:
                self.write_code(self.lit_enc.codes[END_BLOCK])
                self.prev_header = 0
        if self.prev_header == 0:
            self.lit_enc, self.tmp_lit_enc = self.tmp_lit_enc, self.lit_enc
            self.generate_codegen(END_BLOCK + 1, 1, self.lit_enc, HUFF_OFFSET)
            self.cg_enc.generate(self.codegen_freq, 7)
            self.dynamic_header(END_BLOCK + 1, 1, self.codegens(), eof)
            self.wrote_huffman = True
            self.prev_header = self.header_size()[0]
        codes = self.lit_enc.codes
        table = [(c >> 8, c & 0xFF) for c in codes[:256]]
        bits, nbits = self.bits, self.nbits
        parts = []
        for byte in data:
            c, ln = table[byte]
            bits |= c << nbits
            nbits += ln
            if nbits >= 4096:
                k = nbits >> 3
                parts.append((bits & ((1 << (k * 8)) - 1)).to_bytes(k, "little"))
                bits >>= k * 8
                nbits -= k * 8
        self.out += b"".join(parts)
        self.bits, self.nbits = bits, nbits
        if eof or sync:
            self.write_code(codes[END_BLOCK])
            self.prev_header = 0
            self.wrote_huffman = False


# -- level 1 matcher (fastEncL1) --------------------------------------------------------------------

class _FastL1:
    def __init__(self) -> None:
        self.table = [0] * TABLE_SIZE
        self.hist = bytearray()
        self.cur = MAX_STORE_BLOCK

    def reset(self) -> None:
        if self.cur <= BUFFER_RESET:
            self.cur += MAX_MATCH_OFFSET + len(self.hist)
        self.hist = bytearray()

    def _add_block(self, src: bytes) -> int:
        if len(self.hist) + len(src) > ALLOC_HISTORY:
            offset = len(self.hist) - MAX_MATCH_OFFSET
            self.hist = self.hist[offset:offset + MAX_MATCH_OFFSET]
            self.cur += offset
        s = len(self.hist)
        self.hist += src
        return s

    def encode(self, dst: _Tokens, src: bytes) -> None:
        input_margin = 12 - 1
        min_non_literal = 1 + 1 + input_margin
        while self.cur >= BUFFER_RESET:
            if not self.hist:
                self.table = [0] * TABLE_SIZE
                self.cur = MAX_MATCH_OFFSET
                break
            min_off = self.cur + len(self.hist) - MAX_MATCH_OFFSET
            cur = self.cur
            self.table = [0 if v <= min_off else v - cur + MAX_MATCH_OFFSET for v in self.table]
            self.cur = MAX_MATCH_OFFSET
        s = self._add_block(src)
        if len(src) < min_non_literal:
            dst.toks.extend([0] * len(src))  # Go sets n only; these blocks take the Huffman path
            return
        src_b = bytes(self.hist)
        table = self.table
        cur = self.cur
        toks = dst.toks
        lit_hist = dst.lit_hist
        extra_hist = dst.extra_hist
        off_hist = dst.off_hist
        frombytes = int.from_bytes
        next_emit = s
        s_limit = len(src_b) - input_margin
        n_src = len(src_b)

        def h5(u: int) -> int:
            return (((u << 24) & M64) * PRIME5 & M64) >> 49

        cv = frombytes(src_b[s:s + 8], "little")
        done = False
        while not done:
            next_s = s
            while True:
                nh = h5(cv)
                cand = table[nh]
                next_s = s + 2 + ((s - next_emit) >> 5)
                if next_s > s_limit:
                    done = True
                    break
                now = frombytes(src_b[next_s:next_s + 8], "little")
                table[nh] = s + cur
                nh = h5(now)
                t = cand - cur
                if s - t < MAX_MATCH_OFFSET and (cv & 0xFFFFFFFF) == frombytes(src_b[t:t + 4], "little"):
                    table[nh] = next_s + cur
                    break
                cv = now
                s = next_s
                next_s += 1
                cand = table[nh]
                now >>= 8
                table[nh] = s + cur
                t = cand - cur
                if s - t < MAX_MATCH_OFFSET and (cv & 0xFFFFFFFF) == frombytes(src_b[t:t + 4], "little"):
                    table[nh] = next_s + cur
                    break
                cv = now
                s = next_s
            if done:
                break
            while True:
                l = _match_len(src_b, s + 4, t + 4, n_src) + 4
                while t > 0 and s > next_emit and src_b[t - 1] == src_b[s - 1]:
                    s -= 1
                    t -= 1
                    l += 1
                if next_emit < s:
                    for v in src_b[next_emit:s]:
                        toks.append(v)
                        lit_hist[v] += 1
                x_off = s - t - BASE_MATCH_OFFSET
                oc = offset_code(x_off)
                x_off |= oc << 16
                x_len = l
                while x_len > 0:
                    xl = x_len
                    if xl > 258:
                        xl = 258 if xl > 258 + BASE_MATCH_LENGTH else 258 - BASE_MATCH_LENGTH
                    x_len -= xl
                    xl -= BASE_MATCH_LENGTH
                    extra_hist[LENGTH_CODES[xl & 0xFF] + 1] += 1
                    off_hist[oc] += 1
                    toks.append(MATCH_TYPE | (xl << LENGTH_SHIFT) | x_off)
                s += l
                next_emit = s
                if next_s >= s:
                    s = next_s + 1
                if s >= s_limit:
                    if s + l + 8 < n_src:
                        cv2 = frombytes(src_b[s:s + 8], "little")
                        table[h5(cv2)] = s + cur
                    done = True
                    break
                x = frombytes(src_b[s - 2:s + 6], "little")
                o = cur + s - 2
                table[h5(x)] = o
                x >>= 16
                ch = h5(x)
                cand = table[ch]
                table[ch] = o + 2
                t = cand - cur
                if s - t > MAX_MATCH_OFFSET or (x & 0xFFFFFFFF) != frombytes(src_b[t:t + 4], "little"):
                    cv = x >> 8
                    s += 1
                    break
        if next_emit < n_src:
            if dst.n == 0:
                return
            for v in src_b[next_emit:]:
                toks.append(v)
                lit_hist[v] += 1


def _match_len(src: bytes, s: int, t: int, n: int) -> int:
    """matchLen(src[s:], src[t:]) with t < s."""
    left = n - s
    if left <= 0:
        return 0
    if src[s:n] == src[t:t + left]:
        return left
    lo, hi = 0, left
    while hi - lo > 16:
        mid = (lo + hi) // 2
        if src[s + lo:s + mid] == src[t + lo:t + mid]:
            lo = mid
        else:
            hi = mid
    while lo < hi and src[s + lo] == src[t + lo]:
        lo += 1
    return lo


# -- compressor ---------------------------------------------------------------------------------------

def go_deflate(data: bytes) -> bytes:
    """A raw deflate stream as Go 1.27's flate.NewWriter(w, BestSpeed) writes `data`, then Close."""
    w = _BitWriter()
    fast = _FastL1()
    n = len(data)
    pos = 0
    windows = []
    while n - pos > MAX_STORE_BLOCK:
        windows.append((pos, pos + MAX_STORE_BLOCK, False))
        pos += MAX_STORE_BLOCK
    windows.append((pos, n, True))
    for start, end, sync in windows:
        _deflate_fast(w, fast, data[start:end], sync)
    w.stored_header(0, True)
    return bytes(w.out)


def _deflate_fast(w: _BitWriter, fast: _FastL1, window: bytes, sync: bool) -> None:
    end = len(window)
    if end < MAX_STORE_BLOCK:
        if not sync:
            return
        if end < 128:
            if end == 0:
                return
            if end <= 32:
                w.stored_header(end, False)
                w.write_bytes(window)
            else:
                w.block_huff(False, window, True)
            fast.reset()
            return
    t = _Tokens()
    fast.encode(t, window)
    if t.n == 0:
        w.stored_header(end, False)
        w.write_bytes(window)
    elif t.n > end - (end >> 4):
        w.block_huff(False, window, sync)
    else:
        w.block_dynamic(t, False, window, sync)


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"


def go_gzip(data: bytes) -> bytes:
    """gzip.NewWriterLevel(w, BestSpeed) output for `data` (Go 1.27)."""
    return (_GZIP_HEADER + go_deflate(data) + (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little")
            + (len(data) & 0xFFFFFFFF).to_bytes(4, "little"))
