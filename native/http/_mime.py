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

# weed registers these with mime.AddExtensionType in an init() of a package linked into every
# weed binary (weed/admin/dash), so they override the host database in the volume server too.
WEED_OVERRIDES: tuple[tuple[str, str], ...] = (
    (".txt", "text/plain"), (".log", "text/plain"), (".cfg", "text/plain"), (".conf", "text/plain"),
    (".ini", "text/plain"), (".properties", "text/plain"), (".gitignore", "text/plain"),
    (".gitattributes", "text/plain"), (".env", "text/plain"), (".md", "text/markdown"),
    (".markdown", "text/markdown"), (".html", "text/html"), (".htm", "text/html"), (".css", "text/css"),
    (".xml", "application/xml"), (".js", "application/javascript"), (".mjs", "application/javascript"),
    (".ts", "text/typescript"), (".py", "text/x-python"), (".go", "text/x-go"), (".java", "text/x-java"),
    (".c", "text/x-c"), (".cpp", "text/x-c++"), (".cc", "text/x-c++"), (".cxx", "text/x-c++"),
    (".c++", "text/x-c++"), (".h", "text/x-c-header"), (".hpp", "text/x-c-header"), (".php", "text/x-php"),
    (".rb", "text/x-ruby"), (".pl", "text/x-perl"), (".rs", "text/x-rust"), (".swift", "text/x-swift"),
    (".kt", "text/x-kotlin"), (".scala", "text/x-scala"), (".sh", "text/x-shellscript"),
    (".bash", "text/x-shellscript"), (".zsh", "text/x-shellscript"), (".fish", "text/x-shellscript"),
    (".dockerfile", "text/x-dockerfile"), (".json", "application/json"), (".yaml", "text/yaml"),
    (".yml", "text/yaml"), (".csv", "text/csv"), (".sql", "text/sql"), (".jpg", "image/jpeg"),
    (".jpeg", "image/jpeg"), (".png", "image/png"), (".gif", "image/gif"), (".bmp", "image/bmp"),
    (".webp", "image/webp"), (".svg", "image/svg+xml"), (".ico", "image/x-icon"),
    (".pdf", "application/pdf"), (".doc", "application/msword"),
    (".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (".xls", "application/vnd.ms-excel"),
    (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (".ppt", "application/vnd.ms-powerpoint"),
    (".pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    (".zip", "application/zip"), (".tar", "application/x-tar"), (".gz", "application/gzip"),
    (".bz2", "application/x-bzip2"), (".7z", "application/x-7z-compressed"),
    (".rar", "application/x-rar-compressed"), (".mp4", "video/mp4"), (".avi", "video/x-msvideo"),
    (".mov", "video/quicktime"), (".wmv", "video/x-ms-wmv"), (".flv", "video/x-flv"),
    (".webm", "video/webm"), (".mp3", "audio/mpeg"), (".wav", "audio/wav"), (".flac", "audio/flac"),
    (".aac", "audio/aac"), (".ogg", "audio/ogg"),
)

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
    """An immutable snapshot of Go's extension -> type maps for one host, read from the host's
    files at the first lookup (as Go's mime package does: a server that serves no file by name
    never reads them, and start-up does not)."""

    __slots__ = ("_exact", "_lower", "_source")

    def __init__(self, exact: dict[str, str], lower: dict[str, str]) -> None:
        self._exact: dict[str, str] | None = exact
        self._lower: dict[str, str] = lower
        self._source: tuple[Sequence[str], Sequence[str], Sequence[tuple[str, str]]] | None = None

    @classmethod
    def load(
        cls, globs_files: Sequence[str] = GLOBS_FILES, type_files: Sequence[str] = TYPE_FILES,
        overrides: Sequence[tuple[str, str]] = WEED_OVERRIDES,
    ) -> "MimeTable":
        """The table of these files (read at the first lookup)."""
        table = cls({}, {})
        table._exact = None
        table._source = (globs_files, type_files, overrides)
        return table

    def type_by_extension(self, ext: str) -> str:
        exact = self._exact
        if exact is None:
            exact = self._fill()
        v = exact.get(ext)
        if v is not None:
            return v
        return self._lower.get(ext.lower() if ext.isascii() else _go_lower(ext), "")

    def _fill(self) -> dict[str, str]:
        assert self._source is not None
        exact, self._lower = _read(*self._source)  # two threads may both read: the same maps
        self._exact = exact
        return exact


def _read(
    globs_files: Sequence[str], type_files: Sequence[str], overrides: Sequence[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, str]]:
    """Go's initMime: the first globs file found, else every mime.types file, then weed's own."""
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
        break
    else:
        for path in type_files:
            for line in _lines(path) or ():
                fields = line.split()
                if len(fields) <= 1 or fields[0][0] == "#":
                    continue
                for ext in fields[1:]:
                    if ext[0] == "#":
                        break
                    set_type("." + ext, fields[0])
    for ext, typ in overrides:
        set_type(ext, typ)
    return exact, lower


def _go_lower(s: str) -> str:
    """strings.ToLower on a byte string: ASCII letters only for bytes that are not valid UTF-8."""
    try:
        return s.encode("latin-1").decode("utf-8").lower().encode("utf-8").decode("latin-1")
    except UnicodeDecodeError:
        return "".join(c.lower() if c.isascii() else c for c in s)
