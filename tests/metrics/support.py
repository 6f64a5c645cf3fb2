"""Reading a /metrics answer the way the tests compare them: families (type, label names) and samples."""

from __future__ import annotations

import dataclasses
import http.client
import re
from collections.abc import Callable

import httpx

from tests.support.waiting import wait_until

__all__ = ["Exposition", "parse_exposition", "scrape", "workload", "Workload"]

_SAMPLE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclasses.dataclass
class Exposition:
    types: dict[str, str]  # family -> counter|gauge|histogram|...
    type_lines: list[str]  # every family name a TYPE line declared, in order (duplicates kept)
    samples: list[tuple[str, dict[str, str], float]]

    def family_of(self, sample_name: str) -> str | None:
        if sample_name in self.types:
            return sample_name
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample_name.removesuffix(suffix)
            if base != sample_name and self.types.get(base) == "histogram":
                return base
        return None

    def label_names(self, family: str) -> set[frozenset[str]]:
        """Every label-name set the family's samples carry (`le` left out)."""
        out = set()
        for name, labels, _ in self.samples:
            if self.family_of(name) == family:
                out.add(frozenset(k for k in labels if k != "le"))
        return out

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when it is absent (a labelled family shows a child once used)."""
        for n, ls, v in self.samples:
            if n == name and ls == labels:
                return v
        return 0.0

    def described(self, prefix: str) -> dict[str, tuple[str, frozenset[frozenset[str]]]]:
        """Families under `prefix`: name -> (type, label-name sets)."""
        return {f: (t, frozenset(self.label_names(f))) for f, t in self.types.items() if f.startswith(prefix)}


def parse_exposition(text: str) -> Exposition:
    types: dict[str, str] = {}
    type_lines: list[str] = []
    samples = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            type_lines.append(name)
        elif line and not line.startswith("#"):
            m = _SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            labels = dict(_LABEL.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return Exposition(types, type_lines, samples)


def scrape(url: str) -> Exposition:
    r = httpx.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    return parse_exposition(r.text)


@dataclasses.dataclass
class Workload:
    uploads: int = 0
    reads: int = 0  # 200 GETs
    heads: int = 0
    missing: int = 0  # 404: unknown needle id (invalid needle)
    mismatched: int = 0  # 404: wrong cookie
    deleted_reads: int = 0  # 404: read after the delete
    deletes: int = 0
    collection: str = ""


def workload(master_url: str, data_center: str, reads: int = 6) -> Workload:
    """Uploads, reads over fresh connections (with worker processes, the kernel spreads them),
    a HEAD, three kinds of 404 and a delete, against the server `data_center` names."""
    done = Workload(collection=data_center)
    fids = []
    node = ""
    for i in range(2):
        a: dict = {}

        def assigned() -> bool:
            nonlocal a
            a = httpx.get(f"{master_url}/dir/assign", params={"dataCenter": data_center, "collection": data_center}, timeout=30).json()
            return "fid" in a  # the first assignment waits for the master to grow volumes

        wait_for(assigned, 30, "no assignment")
        node = a["url"]
        if i == 0:
            r = httpx.post(f"http://{node}/{a['fid']}", files={"file": (f"f{i}.txt", b"metrics %d" % i)}, timeout=30)
            assert r.status_code == 201, r.text
        else:  # the few headers Go's own upload client sends (native serves these on its fast path)
            assert _plain_upload(node, a["fid"], b"metrics %d" % i) == 201
        fids.append(a["fid"])
        done.uploads += 1
    get: Callable[[str], int] = lambda path: httpx.get(f"http://{node}/{path}", timeout=30).status_code  # noqa: E731
    for i in range(reads):
        assert get(fids[i % 2]) == 200
        done.reads += 1
    assert httpx.head(f"http://{node}/{fids[0]}", timeout=30).status_code == 200
    done.heads += 1
    vid = fids[0].split(",")[0]
    assert get(f"{vid},7fffffff00000001") == 404  # no such needle on a volume held here
    done.missing += 1
    assert get(fids[0][:-2] + ("00" if not fids[0].endswith("00") else "11")) == 404  # the cookie does not match
    done.mismatched += 1
    r = httpx.delete(f"http://{node}/{fids[1]}", timeout=30)
    assert r.status_code == 202, r.text
    done.deletes += 1
    assert get(fids[1]) == 404
    done.deleted_reads += 1
    return done


def _plain_upload(node: str, fid: str, data: bytes) -> int:
    host, port = node.rsplit(":", 1)
    body = (b"--b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plain.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\n" + data + b"\r\n--b0--\r\n")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/" + fid, body, {"Content-Type": "multipart/form-data; boundary=b0"})
        return conn.getresponse().status
    finally:
        conn.close()


def wait_for(check: Callable[[], bool], timeout: float = 20.0, message: str = "") -> None:
    """The metrics tests' wait: tests/support/logs.wait_until with this module's timeout."""
    wait_until(check, timeout, message or "the metrics check")
