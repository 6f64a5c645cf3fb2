"""The Pillow half of `_images`: decoding, Go's `imaging` geometry and Go's encoders.

Imported by `_images` on the first request that transforms an image, so a server start does not
pay for Pillow.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageOps

__all__ = ["resized", "cropped", "fix_jpg_orientation"]

_FORMATS = ["PNG", "JPEG", "GIF", "WEBP"]
_LANCZOS = Image.Resampling.LANCZOS


def _decode(data: bytes) -> Image.Image | None:
    try:
        img = Image.open(io.BytesIO(data), formats=_FORMATS)
        img.load()
    except Exception:  # Pillow raises many types for bad input; Go just logs and serves as is
        return None
    return img


# What Go 1.27's image/jpeg (q75) and image/gif write for an empty image (imaging returns one
# for degenerate sizes); image/png refuses it, leaving an empty body.
_EMPTY_JPEG = bytes.fromhex(
    "ffd8ffdb008400080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f1e1d1a1c1c20242e2720222c"
    "231c1c2837292c30313434341f27393d38323c2e333432010909090c0b0c180d0d1832211c2132323232323232323232"
    "32323232323232323232323232323232323232323232323232323232323232323232323232323232ffc0001108000000"
    "0003012200021101031101ffc401a20000010501010101010100000000000000000102030405060708090a0b10000201"
    "0303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f0243362"
    "7282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a7374"
    "75767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8"
    "c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa0100030101010101010101010000000000"
    "000102030405060708090a0b110002010204040304070504040001027700010203110405213106124151076171132232"
    "8108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a53"
    "5455565758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8"
    "a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9faff"
    "da000c03010002110311003f00ffd9"
)
_EMPTY_GIF = bytes.fromhex(
    "474946383961000000008700000000000000440000880000cc0044000044440044880044cc0088000088440088880088"
    "cc00cc0000cc4400cc8800cccc00dddd1111110000550000990000dd005500005555004c990049dd00990000994c0099"
    "990093dd00dd0000dd4900dd9300ee9e00eeee2222220000660000aa0000ee0066000066660055aa004fee00aa0000aa"
    "5500aaaa009eee00ee0000ee4f00ff5500ffaa00ffff3333330000770000bb0000ff007700007777005dbb0055ff00bb"
    "0000bb5d00bbbb00aaff00ff004400444400884400cc4444004444444444884444cc4488004488444488884488cc44cc"
    "0044cc4444cc8844cccc4400005500005500554c00994900dd5555005555554c4c994949dd4c99004c994c4c99994993"
    "dd49dd0049dd4949dd9349dddd4feeee6600006600665500aa4f00ee6666006666665555aa4f4fee55aa0055aa5555aa"
    "aa4f9eee4fee004fee4f4fee9e55ffaa55ffff7700007700775d00bb5500ff7777007777775d5dbb5555ff5dbb005dbb"
    "5d5dbbbb55aaff55ff0055ff558800888800cc8844008844448844888844cc8888008888448888888888cc88cc0088cc"
    "4488cc8888cccc88000088004499004c9900999300dd994c00994c4c994c999349dd99990099994c9999999393dd93dd"
    "0093dd4993dd9393dddd990000aa0000aa0055aa00aa9e00eeaa5500aa5555aa55aa9e4feeaaaa00aaaa55aaaaaa9e9e"
    "ee9eee009eee4f9eee9e9eeeeeaaffffbb0000bb005dbb00bbaa00ffbb5d00bb5d5dbb5dbbaa55ffbbbb00bbbb5dbbbb"
    "bbaaaaffaaff00aaff55aaffaacc00cccc4400cc4444cc4488cc44cccc8800cc8844cc8888cc88cccccc00cccc44cccc"
    "88cccccccc0000cc0044cc0088dd0093dd00dddd4900dd4949dd4993dd49dddd9300dd9349dd9393dd93dddddd00dddd"
    "49dddd93dddddddd0000dd0049ee004fee009eee00eeee4f00ee4f4fee4f9eee4feeee9e00ee9e4fee9e9eee9eeeeeee"
    "00eeee4feeee9eeeeeeeee0000ff0000ff0055ff00aaff00ffff5500ff5555ff55aaff55ffffaa00ffaa55ffaaaaffaa"
    "ffffff00ffff55ffffaaffffff2c0000000000000000000803000302003b"
)


def _encode(img: Image.Image | None, ext: str) -> bytes:
    """Go's encoders by extension (PNG, JPEG q75, GIF; webp as PNG)."""
    if img is None or img.width == 0 or img.height == 0:
        if ext in (".jpg", ".jpeg"):
            return _EMPTY_JPEG
        if ext == ".gif":
            return _EMPTY_GIF
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
