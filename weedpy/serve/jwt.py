"""File-id JWTs as Go's volume server checks them (weed/security, golang-jwt v5, HMAC only).

`token_from_request` applies Go's precedence (query `jwt`, then `Authorization: Bearer`, then the
`AT` cookie; the first non-empty wins even when invalid). `verify_file_id_token` accepts a token
only when it is a well-formed JWS signed with an HS256/384/512 key, its `exp`/`nbf` hold (no
leeway; no `exp` means no expiry) and its `fid` claim equals `vid,fid` (ext and `_delta` removed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable

__all__ = ["token_from_request", "verify_file_id_token", "expected_claim", "sign_file_id_token", "cookie_value"]

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
# Every algorithm golang-jwt knows; an unknown `alg` fails differently but still fails.
_COOKIE_NAME = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def cookie_value(cookie_headers: list[str], name: str) -> str | None:
    """r.Cookie(name): the first valid cookie with that name across Cookie headers (readCookies)."""
    for line in cookie_headers:
        for part in line.strip(" \t\r\n").split(";"):
            part = part.strip(" \t\r\n")
            if not part:
                continue
            key, _, val = part.partition("=")
            key = key.strip(" \t\r\n")
            if key != name or not all(c in _COOKIE_NAME for c in key) or not key:
                continue
            if len(val) > 1 and val[0] == '"' and val[-1] == '"':
                val = val[1:-1]
            if all(0x20 <= ord(c) < 0x7F and c not in '";\\' for c in val):
                return val
    return None


def token_from_request(jwt_query: str, authorization: str, cookies: list[str]) -> str:
    """security.GetJwt: query, then a Bearer header (scheme case-insensitive), then cookie AT."""
    if jwt_query:
        return jwt_query
    if len(authorization) > 7 and authorization[:6].upper() == "BEARER":
        return authorization[7:]
    return cookie_value(cookies, "AT") or ""


def expected_claim(vid: str, fid: str) -> str:
    """`vid,fid` with a trailing `_delta` removed (the ext is already gone from fid)."""
    i = fid.rfind("_")
    if i > 0:
        fid = fid[:i]
    return f"{vid},{fid}"


def _b64decode(seg: str) -> bytes:
    # RawURLEncoding, strict about padding; Go's decoder skips \r and \n.
    seg = seg.replace("\r", "").replace("\n", "")
    if not all(c in _B64 for c in seg) or len(seg) % 4 == 1:
        raise ValueError("illegal base64 data")
    raw = base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))
    # Go rejects non-canonical trailing bits only in strict mode, which golang-jwt does not use.
    return raw


def _numeric_date(v: object) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("claims: invalid NumericDate")
    return float(v)


def _fold_eq(key: str, name: str) -> bool:
    """encoding/json's case-insensitive field match (ASCII plus the two special folds)."""
    k = key.replace("\u017f", "s").replace("\u212a", "k")
    return k.lower() == name


def verify_file_id_token(
    key: bytes, token: str, expected_fid: str, now: Callable[[], float] = time.time,
) -> bool:
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(_b64decode(parts[0]))
        payload_raw = _b64decode(parts[1])
        sig = _b64decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    if not isinstance(header, dict):
        return False
    alg = header.get("alg")
    digest = _HASHES.get(alg) if isinstance(alg, str) else None
    if digest is None:
        return False
    signing_input = (parts[0] + "." + parts[1]).encode("latin-1")
    good = hmac.new(key, signing_input, digest).digest()
    if not hmac.compare_digest(good, sig):
        return False
    try:
        claims = json.loads(payload_raw, object_pairs_hook=list)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(claims, list):
        return False
    fid: str | None = None
    exp = nbf = None
    try:
        for k, v in claims:
            if _fold_eq(k, "fid"):
                if v is None:
                    continue
                if not isinstance(v, str):
                    return False
                fid = v
            elif _fold_eq(k, "exp"):
                exp = _numeric_date(v)
            elif _fold_eq(k, "nbf"):
                nbf = _numeric_date(v)
            elif _fold_eq(k, "iat"):
                _numeric_date(v)
            elif _fold_eq(k, "iss") or _fold_eq(k, "sub") or _fold_eq(k, "jti"):
                if v is not None and not isinstance(v, str):
                    return False
            elif _fold_eq(k, "aud"):
                if v is not None and not isinstance(v, str) and not (
                    isinstance(v, list) and all(isinstance(x, str) for x in v)
                ):
                    return False
    except ValueError:
        return False
    t = now()
    if exp is not None and not t < exp:
        return False
    if nbf is not None and t < nbf:
        return False
    return fid == expected_fid


def sign_file_id_token(key: bytes, fid: str, expires_after: int = 0, now: Callable[[], float] = time.time,
                       alg: str = "HS256", extra: dict | None = None) -> str:
    """A token like Go's GenJwtForVolumeServer (for tests and fan-out)."""
    claims: dict = {"fid": fid}
    if expires_after > 0:
        claims["exp"] = int(now()) + expires_after
    if extra:
        claims.update(extra)

    def enc(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    head = enc(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    body = enc(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), _HASHES[alg]).digest()
    return f"{head}.{body}.{enc(sig)}"
