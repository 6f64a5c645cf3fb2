"""Go's mime.TypeByExtension: the built-in table, then the host's MIME database, as Go loads it.

Go starts from its built-in table, then reads the first freedesktop `globs2` file that exists
(keeping the first entry per extension, never replacing a built-in) or, failing that, every
`mime.types` file (later entries win). `text/*` types without a charset get `; charset=utf-8`.
Lookups try the extension as given, then lower-cased.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from native.http._mediatype import MediaTypeError, format_media_type, parse_media_type

__all__ = ["MimeTable", "BUILTIN_TYPES", "GLOBS_FILES", "TYPE_FILES"]

# Go 1.27's builtinTypesLower (data, not code): the weed 4.48 binary is built with go1.27.1.
BUILTIN_TYPES: dict[str, str] = {
    ".ai": "application/postscript", ".apk": "application/vnd.android.package-archive",
    ".apng": "image/apng", ".avif": "image/avif", ".bin": "application/octet-stream",
    ".bmp": "image/bmp", ".com": "application/octet-stream", ".css": "text/css; charset=utf-8",
    ".csv": "text/csv; charset=utf-8", ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".ehtml": "text/html; charset=utf-8", ".eml": "message/rfc822", ".eps": "application/postscript",
    ".exe": "application/octet-stream", ".flac": "audio/flac", ".gif": "image/gif",
    ".gz": "application/gzip", ".htm": "text/html; charset=utf-8", ".html": "text/html; charset=utf-8",
    ".ico": "image/vnd.microsoft.icon", ".ics": "text/calendar; charset=utf-8", ".jfif": "image/jpeg",
    ".jpeg": "image/jpeg", ".jpg": "image/jpeg", ".js": "text/javascript; charset=utf-8",
    ".json": "application/json", ".m4a": "audio/mp4", ".mjs": "text/javascript; charset=utf-8",
    ".mp3": "audio/mpeg", ".mp4": "video/mp4", ".oga": "audio/ogg", ".ogg": "audio/ogg",
    ".ogv": "video/ogg", ".opus": "audio/ogg", ".pdf": "application/pdf", ".pjp": "image/jpeg",
    ".pjpeg": "image/jpeg", ".png": "image/png", ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".ps": "application/postscript", ".rdf": "application/rdf+xml", ".rtf": "application/rtf",
    ".shtml": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".text": "text/plain; charset=utf-8",
    ".tif": "image/tiff", ".tiff": "image/tiff", ".txt": "text/plain; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8", ".wasm": "application/wasm", ".wav": "audio/wav",
    ".weba": "audio/webm", ".webm": "video/webm", ".webp": "image/webp", ".xbl": "text/xml; charset=utf-8",
    ".xbm": "image/x-xbitmap", ".xht": "application/xhtml+xml", ".xhtml": "application/xhtml+xml",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xml": "text/xml; charset=utf-8", ".xsl": "text/xml; charset=utf-8", ".zip": "application/zip",
}

GLOBS_FILES: tuple[str, ...] = ("/usr/local/share/mime/globs2", "/usr/share/mime/globs2")
TYPE_FILES: tuple[str, ...] = (
    "/etc/mime.types", "/etc/apache2/mime.types", "/etc/apache/mime.types", "/etc/httpd/conf/mime.types",
)
_MAX_LINE = 64 * 1024  # bufio.Scanner's default token limit


def _lines(path: str) -> list[str] | None:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    text = data.decode("latin-1")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines if len(ln) <= _MAX_LINE]


class MimeTable:
    """An immutable snapshot of Go's extension -> type maps for one host."""

    __slots__ = ("_exact", "_lower")

    def __init__(self, exact: dict[str, str], lower: dict[str, str]) -> None:
        self._exact = exact
        self._lower = lower

    @classmethod
    def load(cls, globs_files: Sequence[str] = GLOBS_FILES, type_files: Sequence[str] = TYPE_FILES) -> "MimeTable":
        exact = dict(BUILTIN_TYPES)
        lower = dict(BUILTIN_TYPES)

        def set_type(ext: str, mime_type: str) -> None:
            try:
                just_type, params = parse_media_type(mime_type)
            except MediaTypeError:
                return
            if mime_type.startswith("text/") and params.get("charset", "") == "":
                params["charset"] = "utf-8"
                mime_type = format_media_type(just_type, params)
            exact[ext] = mime_type
            lower[ext.lower()] = mime_type

        for path in globs_files:
            lines = _lines(path)
            if lines is None:
                continue
            for line in lines:
                fields = line.split(":")
                if len(fields) < 3 or len(fields[0]) < 1 or len(fields[2]) < 3:
                    continue
                if fields[0][0] == "#" or fields[2][0] != "*" or fields[2][1] != ".":
                    continue
                ext = fields[2][1:]
                if any(c in ext for c in "?*["):
                    continue
                if ext in exact:
                    continue
                set_type(ext, fields[1])
            return cls(exact, lower)
        for path in type_files:
            for line in _lines(path) or ():
                fields = line.split()
                if len(fields) <= 1 or fields[0][0] == "#":
                    continue
                for ext in fields[1:]:
                    if ext[0] == "#":
                        break
                    set_type("." + ext, fields[0])
        return cls(exact, lower)

    def type_by_extension(self, ext: str) -> str:
        v = self._exact.get(ext)
        if v is not None:
            return v
        return self._lower.get(ext.lower() if ext.isascii() else _go_lower(ext), "")


def _go_lower(s: str) -> str:
    """strings.ToLower on a byte string: ASCII letters only for bytes that are not valid UTF-8."""
    try:
        return s.encode("latin-1").decode("utf-8").lower().encode("utf-8").decode("latin-1")
    except UnicodeDecodeError:
        return "".join(c.lower() if c.isascii() else c for c in s)
