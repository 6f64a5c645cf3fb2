"""Time to live: two bytes `[count, unit]`, parsed and normalised like Go's needle.ReadTTL."""

from __future__ import annotations

import dataclasses
import re

__all__ = ["TTL", "EMPTY_TTL"]

EMPTY, MINUTE, HOUR, DAY, WEEK, MONTH, YEAR = range(7)

_UNIT_SECONDS = {
    EMPTY: 0,
    MINUTE: 60,
    HOUR: 3600,
    DAY: 86400,
    WEEK: 7 * 86400,
    MONTH: 30 * 86400,
    YEAR: 365 * 86400,
}
_UNIT_LETTER = {MINUTE: "m", HOUR: "h", DAY: "d", WEEK: "w", MONTH: "M", YEAR: "y"}
_LETTER_UNIT = {v: k for k, v in _UNIT_LETTER.items()}
_U64 = (1 << 64) - 1
_ATOI = re.compile(r"[+-]?[0-9]+\Z")


@dataclasses.dataclass(frozen=True, slots=True)
class TTL:
    count: int = 0
    unit: int = EMPTY

    @classmethod
    def parse(cls, text: str) -> "TTL":
        """`3m`, `4h`, `5d`, `6w`, `7M`, `8y`, or bare minutes; normalised (`7d` -> `1w`).

        Raises ValueError where Go's ReadTTL returns an error (its callers mostly ignore it and
        use the empty TTL; `parse_lenient` does that).
        """
        if text == "":
            return EMPTY_TTL
        unit_char, count_text = text[-1], text[:-1]
        if unit_char.isdigit() and unit_char.isascii():
            unit_char, count_text = "m", text
        if not _ATOI.match(count_text):
            raise ValueError(f"invalid ttl {text!r}")
        count = int(count_text)
        if not -(1 << 63) <= count < (1 << 63):
            raise ValueError(f"ttl {text!r} out of range")
        return _fit(count, _LETTER_UNIT.get(unit_char, EMPTY))

    @classmethod
    def parse_lenient(cls, text: str) -> "TTL":
        try:
            return cls.parse(text)
        except ValueError:
            return EMPTY_TTL

    @classmethod
    def from_bytes(cls, raw: bytes | memoryview) -> "TTL":
        return cls(raw[0], raw[1])

    @classmethod
    def from_uint32(cls, value: int) -> "TTL":
        return cls((value >> 8) & 0xFF, value & 0xFF)

    def to_bytes(self) -> bytes:
        return bytes((self.count, self.unit))

    def to_uint32(self) -> int:
        return 0 if self.count == 0 else (self.count << 8) + self.unit

    @property
    def seconds(self) -> int:
        return self.count * _UNIT_SECONDS.get(self.unit, 0)

    @property
    def minutes(self) -> int:
        return self.seconds // 60

    def __bool__(self) -> bool:
        return self.seconds != 0

    def __str__(self) -> str:
        if self.count == 0 or self.unit not in _UNIT_LETTER:
            return ""
        return f"{self.count}{_UNIT_LETTER[self.unit]}"


EMPTY_TTL = TTL()


def _fit(count: int, unit: int) -> TTL:
    """Largest unit that represents the duration exactly with a count below 256, else coarser."""
    seconds = (count * _UNIT_SECONDS[unit]) & _U64  # Go multiplies in uint64
    if seconds == 0:
        return EMPTY_TTL
    for u in (YEAR, MONTH, WEEK, DAY, HOUR):
        s = _UNIT_SECONDS[u]
        if seconds % s == 0 and seconds // s < 256:
            return TTL(seconds // s, u)
    for u in (MINUTE, HOUR, DAY, WEEK, MONTH, YEAR):
        s = _UNIT_SECONDS[u]
        if seconds // s < 256:
            return TTL(seconds // s, u)
    return EMPTY_TTL
