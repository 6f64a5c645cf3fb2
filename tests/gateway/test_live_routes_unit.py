"""LiveRoutes and the route API without sockets: validation before the switch, versions, edits,
who may call the API, what a front reads per request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from weedpy.serve.guard import Guard
from weedpy.serve.live_routes import LiveRoutes, RoutesApi, edit_table
from weedpy.serve.routes import RouteTableError, Target, parse_route_table


def _table(version: str = "v1", **routes: object):
    return parse_route_table({"version": version, "default": "go", "routes": routes})


def test_install_switches_and_tells_subscribers_in_order() -> None:
    seen: list[str] = []

    async def main() -> None:
        live = LiveRoutes(_table(), mode="mixed")

        async def on_change(lr: LiveRoutes) -> None:  # the workers get the new table before this process serves it
            seen.append(lr.message()["table"]["version"])
            assert lr.version != seen[-1]

        live.subscribe(on_change)
        await live.install(_table("v2", **{"admin.read": "native"}), "test")
        assert live.lookup("admin.read").target is Target.NATIVE and live.serial == 2
        # the same label again gets the serial, so log lines still tell the tables apart
        await live.install(_table("v2"), "test")
        assert live.version == "v2#3"
        assert [c.version for c in live.history] == ["v1", "v2", "v2#3"]
        assert live.history[1].moved == ("admin.read: go -> native",)

    trio.run(main)
    assert seen == ["v2", "v2#3"]


@pytest.mark.parametrize("mode, routes, needle", [
    ("mixed", {"admin.write": "native", "admin.delete": "native"}, "admin.delete"),
    ("mixed", {"admin.healthz": "native"}, "admin.healthz"),
    ("proxy", {"admin.read": "native"}, "admin.read"),
    ("native", {"admin.status": "go"}, "admin.status"),
])
def test_a_table_the_mode_cannot_serve_is_refused_and_the_running_one_stays(mode, routes, needle) -> None:
    async def main() -> None:
        start = parse_route_table({"version": "v1", "default": "native" if mode == "native" else "go"})
        live = LiveRoutes(start, mode=mode)
        with pytest.raises(RouteTableError, match=needle.replace(".", r"\.")):
            await live.install(parse_route_table({"version": "v2", "default": start.default.target.value,
                                                  "routes": routes}), "test")
        assert live.table is start and live.serial == 1

    trio.run(main)


def test_targets_no_front_serves_are_refused() -> None:
    async def main() -> None:
        live = LiveRoutes(_table(), mode="mixed")
        live.serves([Target.GO, Target.NATIVE])  # no dual-run at start
        with pytest.raises(RouteTableError, match="shadow.*admin.read"):
            await live.install(_table("v2", **{"admin.read": "shadow"}), "test")
        with pytest.raises(RouteTableError, match="shadow.*admin.read"):  # a split's Go side is checked too
            await live.install(_table("v2", **{"admin.read": {"target": "native+verify", "native_pct": 5}}), "t")

    trio.run(main)


def test_reload_reads_the_file_and_refuses_a_broken_one(tmp_path: Path) -> None:
    f = tmp_path / "routes.toml"
    f.write_text('version = "f1"\n[routes]\n"admin.read" = "native"\n')

    async def main() -> None:
        live = LiveRoutes(_table(), mode="mixed", path=f)
        await live.reload()
        assert live.version == "f1" and live.history[-1].by == "sighup"
        f.write_text('[routes]\n"admin.read" = \n')
        with pytest.raises(RouteTableError, match="not valid TOML"):
            await live.reload()
        assert live.version == "f1"
        with pytest.raises(RouteTableError, match="no -routes file"):
            await LiveRoutes(_table(), mode="mixed").reload()

    trio.run(main)


def test_edit_table() -> None:
    t = _table("e1", **{"admin.read": "native", "admin.status": "native"})
    e = edit_table(t, {"routes": {"admin.read": None, "admin.ui": {"target": "native"}}})
    assert e.lookup("admin.read").target is Target.GO and e.lookup("admin.ui").target is Target.NATIVE
    assert e.lookup("admin.status").target is Target.NATIVE and e.version == "e1"
    with pytest.raises(RouteTableError, match="admin.reed"):
        edit_table(t, {"routes": {"admin.reed": "native"}})
    with pytest.raises(RouteTableError, match="unknown key"):
        edit_table(t, {"route": {}})
    assert parse_route_table(t.to_doc()) == t  # the document is the table


def test_api_answers_loopback_and_whitelisted_clients_only() -> None:
    async def main() -> None:
        live = LiveRoutes(_table(), mode="mixed")
        open_api = RoutesApi(live, Guard.from_entries([]))
        assert (await open_api.answer("GET", "/weedpy/routes", b"", "10.0.0.5"))[0] == 403
        assert (await open_api.answer("GET", "/weedpy/routes", b"", "::1"))[0] == 200
        listed = RoutesApi(live, Guard.from_entries(["10.0.0.0/24"]))
        assert (await listed.answer("GET", "/weedpy/routes", b"", "10.0.0.5"))[0] == 200
        assert (await listed.answer("GET", "/weedpy/routes", b"", "10.0.1.5"))[0] == 403
        status, doc = await open_api.answer("PATCH", "/weedpy/routes", json.dumps(
            {"version": "p2", "routes": {"admin.read": "native"}}).encode(), "127.0.0.1")
        assert (status, doc["version"]) == (200, "p2")
        status, doc = await open_api.answer("PUT", "/weedpy/routes", b'default = "go"\n[routes]\n"x" = "go"\n',
                                            "127.0.0.1")
        assert status == 400 and "'x'" in doc["error"] and doc["version"] == "p2"
        assert (await open_api.answer("DELETE", "/weedpy/routes", b"", "127.0.0.1"))[0] == 405
        assert (await open_api.answer("POST", "/weedpy/routes/reload", b"", "127.0.0.1"))[0] == 400  # no file
        status, doc = await open_api.answer("GET", "/weedpy/routes", b"", "127.0.0.1")
        assert doc["table"]["routes"] == {"admin.read": {"target": "native"}} and doc["serial"] == 2

    trio.run(main)
