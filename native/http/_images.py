"""On-the-fly crop/resize on reads and EXIF orientation on uploads (weed/images), with Pillow.

The geometry follows Go's `imaging` package (Resize keeps the aspect ratio for a zero side,
Fit/Fill/Thumbnail, centred crops, degenerate sizes give an empty image that Go then fails to
encode, i.e. an empty body). Pixels are Lanczos-resampled by Pillow, so re-encoded bytes differ
from Go's; dimensions match. The Pillow work is in `_imaging`, imported by the first request
that needs it (a server starts without loading Pillow).
"""

from __future__ import annotations

from native.gostrconv import NumError, atoi

__all__ = ["resize_params", "crop_params", "resized", "cropped", "fix_jpg_orientation", "RESIZE_EXTS", "CROP_EXTS"]

RESIZE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
CROP_EXTS = frozenset({".png", ".jpg", ".jpeg", ".gif"})


def _atoi(s: str) -> int:
    try:
        return atoi(s)
    except NumError as exc:
        # strconv.Atoi returns the clamped value on a range error, 0 on a syntax error.
        if exc.err == "value out of range":
            return -(1 << 63) if s.startswith("-") else (1 << 63) - 1
        return 0


def resize_params(ext: str, form_value) -> tuple[int, int, str, bool]:
    """shouldResizeImages: (width, height, mode, should)."""
    w = h = 0
    if ext in RESIZE_EXTS:
        if form_value("width") != "":
            w = _atoi(form_value("width"))
        if form_value("height") != "":
            h = _atoi(form_value("height"))
    mode = form_value("mode")
    return w, h, mode, w > 0 or h > 0


def crop_params(ext: str, form_value) -> tuple[int, int, int, int, bool]:
    """shouldCropImages: (x1, y1, x2, y2, should)."""
    x1 = y1 = x2 = y2 = 0
    if ext in CROP_EXTS:
        vals = []
        for k in ("crop_x1", "crop_y1", "crop_x2", "crop_y2"):
            v = form_value(k)
            vals.append(_atoi(v) if v != "" else 0)
        x1, y1, x2, y2 = vals
    return x1, y1, x2, y2, x1 >= 0 and y1 >= 0 and x2 > x1 and y2 > y1


def resized(ext: str, data: bytes, width: int, height: int, mode: str) -> bytes:
    if width == 0 and height == 0:
        return data
    from native.http import _imaging  # Pillow: loaded by the first image request, not at start-up

    return _imaging.resized(ext, data, width, height, mode)


def cropped(ext: str, data: bytes, x1: int, y1: int, x2: int, y2: int) -> bytes:
    from native.http import _imaging  # Pillow: loaded by the first image request, not at start-up

    return _imaging.cropped(ext, data, x1, y1, x2, y2)


def fix_jpg_orientation(data: bytes) -> bytes:
    """Rotate/flip a JPEG by its EXIF Orientation and re-encode it (q75), as Go does on upload."""
    from native.http import _imaging  # Pillow: loaded by the first image request, not at start-up

    return _imaging.fix_jpg_orientation(data)
