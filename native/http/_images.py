"""On-the-fly crop/resize on reads and EXIF orientation on uploads (weed/images), with Pillow.

The geometry follows Go's `imaging` package (Resize keeps the aspect ratio for a zero side,
Fit/Fill/Thumbnail, centred crops, degenerate sizes give an empty image that Go then fails to
encode, i.e. an empty body). Pixels are Lanczos-resampled by Pillow, so re-encoded bytes differ
from Go's; dimensions match.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageOps

__all__ = ["resize_params", "crop_params", "resized", "cropped", "fix_jpg_orientation", "RESIZE_EXTS", "CROP_EXTS"]

RESIZE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
CROP_EXTS = frozenset({".png", ".jpg", ".jpeg", ".gif"})
_FORMATS = ["PNG", "JPEG", "GIF", "WEBP"]
_LANCZOS = Image.Resampling.LANCZOS


def _decode(data: bytes) -> Image.Image | None:
    try:
        img = Image.open(io.BytesIO(data), formats=_FORMATS)
        img.load()
    except Exception:  # Pillow raises many types for bad input; Go just logs and serves as is
        return None
    return img


def _encode(img: Image.Image | None, ext: str) -> bytes:
    """Go's encoders by extension; an empty image fails to encode -> empty body."""
    if img is None or img.width == 0 or img.height == 0:
        return b""
    buf = io.BytesIO()
    if ext in (".png", ".webp"):
        rgba = img.convert("RGBA")
        if rgba.getextrema()[3][0] == 255:
            rgba = rgba.convert("RGB")
        rgba.save(buf, format="PNG")
    elif ext in (".jpg", ".jpeg"):
        img.convert("RGB").save(buf, format="JPEG", quality=75)
    elif ext == ".gif":
        img.convert("RGB").convert("P", palette=Image.Palette.WEB, dither=Image.Dither.FLOYDSTEINBERG).save(buf, format="GIF")
    return buf.getvalue()


def _resize(img: Image.Image, w: int, h: int) -> Image.Image | None:
    if w < 0 or h < 0 or (w == 0 and h == 0):
        return None
    sw, sh = img.size
    if sw <= 0 or sh <= 0:
        return None
    if w == 0:
        w = int(max(1.0, math.floor(h * sw / sh + 0.5)))
    elif h == 0:
        h = int(max(1.0, math.floor(w * sh / sw + 0.5)))
    if (w, h) == (sw, sh):
        return img.copy()
    return img.convert("RGBA").resize((w, h), _LANCZOS)


def _crop_anchor_center(img: Image.Image, w: int, h: int) -> Image.Image:
    sw, sh = img.size
    x = (sw - w) // 2 if sw - w >= 0 else -((w - sw) // 2)
    y = (sh - h) // 2 if sh - h >= 0 else -((h - sh) // 2)
    return _crop(img, x, y, x + w, y + h)


def _crop(img: Image.Image, x1: int, y1: int, x2: int, y2: int) -> Image.Image:
    sw, sh = img.size
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, sw), min(y2, sh)
    if x2 <= x1 or y2 <= y1:
        return Image.new("RGBA", (0, 0))
    return img.crop((x1, y1, x2, y2))


def _fit(img: Image.Image, mw: int, mh: int) -> Image.Image | None:
    if mw <= 0 or mh <= 0:
        return None
    sw, sh = img.size
    if sw <= mw and sh <= mh:
        return img.copy()
    src_ar, max_ar = sw / sh, mw / mh
    if src_ar > max_ar:
        nw, nh = mw, int(mw / src_ar)
    else:
        nh, nw = mh, int(mh * src_ar)
    return _resize(img, nw, nh)


def _fill(img: Image.Image, w: int, h: int) -> Image.Image | None:
    if w <= 0 or h <= 0:
        return None
    sw, sh = img.size
    if (sw, sh) == (w, h):
        return img.copy()
    src_ar, dst_ar = sw / sh, w / h
    if sw >= 100 and sh >= 100:
        if src_ar < dst_ar:
            tmp = _crop_anchor_center(img, sw, int(max(1.0, sw * h / w) + 0.5))
        else:
            tmp = _crop_anchor_center(img, int(max(1.0, sh * w / h) + 0.5), sh)
        return _resize(tmp, w, h)
    tmp = _resize(img, w, 0) if src_ar < dst_ar else _resize(img, 0, h)
    return None if tmp is None else _crop_anchor_center(tmp, w, h)


def _atoi(s: str) -> int:
    from native.http._gostrconv import NumError, atoi

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
    img = _decode(data)
    if img is None:
        return data
    sw, sh = img.size
    if not ((sw > width and width != 0) or (sh > height and height != 0)):
        return data
    if mode == "fit":
        dst = _fit(img, width, height)
    elif mode == "fill":
        dst = _fill(img, width, height)
    elif width == height and sw != sh:
        dst = _fill(img, width, height)  # imaging.Thumbnail
    else:
        dst = _resize(img, width, height)
    return _encode(dst, ext)


def cropped(ext: str, data: bytes, x1: int, y1: int, x2: int, y2: int) -> bytes:
    img = _decode(data)
    if img is None:
        return data
    sw, sh = img.size
    if x2 > sw or y2 > sh:
        return data
    return _encode(_crop(img, x1, y1, x2, y2), ext)


def fix_jpg_orientation(data: bytes) -> bytes:
    """Rotate/flip a JPEG by its EXIF Orientation and re-encode it (q75), as Go does on upload.

    No EXIF or orientation 1: unchanged. Values outside 2..8 still re-encode without moving
    pixels (Go's switch has no default).
    """
    try:
        img = Image.open(io.BytesIO(data), formats=["JPEG"])
        img.load()
        orient = img.getexif().get(0x0112)
    except Exception:
        return data
    if not isinstance(orient, int) or orient == 1:
        return data
    out = ImageOps.exif_transpose(img) if 2 <= orient <= 8 else img
    buf = io.BytesIO()
    out.convert("RGB").save(buf, format="JPEG", quality=75)
    return buf.getvalue()
