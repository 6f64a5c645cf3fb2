"""Go's view of an incoming request (`*http.Request`) built once from the raw head.

Header keys are canonicalised as net/http does while reading, values stay byte strings (latin-1
`str`); the URL is parsed with url.ParseRequestURI; `form` is what r.Form holds once a handler
has called ParseForm (URL query only, unless a POST/PUT/PATCH form body was read).
"""

from __future__ import annotations

from native.http._gourl import BadRequestURI, Query, RequestURL, parse_query, parse_request_target
from native.http._multipart import canonical_mime_key
from weedpy.http1 import Request

__all__ = ["GoRequest", "BadRequestURI"]


class GoRequest:
    __slots__ = ("method", "url", "headers", "_query", "form", "remote_host", "content_length", "raw")

    def __init__(self, raw: Request, remote_host: str) -> None:
        self.raw = raw
        self.method = raw.method.decode("latin-1")
        self.url: RequestURL = parse_request_target(raw.target)
        headers: dict[str, list[str]] = {}
        for name, value in raw.headers:
            key = canonical_mime_key(name) or name.decode("latin-1")
            headers.setdefault(key, []).append(value.decode("latin-1").strip(" \t"))
        self.headers = headers
        self._query: Query | None = None
        self.form: Query | None = None
        self.remote_host = remote_host
        if raw.chunked:
            self.content_length = -1
        elif raw.content_length is not None:
            self.content_length = raw.content_length
        else:
            self.content_length = 0

    @property
    def path(self) -> str:
        return self.url.path

    @property
    def query(self) -> Query:
        """r.URL.Query() (parse errors ignored, as Go's callers ignore them)."""
        q = self._query
        if q is None:
            q = self._query = parse_query(self.url.raw_query)
        return q

    def header(self, key: str) -> str:
        """r.Header.Get(key) for a canonical key."""
        vs = self.headers.get(key)
        return vs[0] if vs else ""

    def header_values(self, key: str) -> list[str]:
        return self.headers.get(key, [])

    def form_value(self, key: str) -> str:
        """r.FormValue(key): the parsed form if ParseForm ran, else the URL query."""
        f = self.form if self.form is not None else self.query
        return f.get(key)
