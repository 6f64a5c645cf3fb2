"""Per-volume evidence and automatic rollback in mixed mode: is native serving each volume well?

The fronts count every request that names a volume (a file id's, an rpc's) for the side that
served it, and the differ every sample it compares, per volume (weedpy/serve/evidence.py,
`Cutover.judged`). `VolumeCutover` shows those counts over the window of the table's
`[volumes] auto_rollback` rule (60 s without one): in `/weedpy/volumes`, in `/weedpy/routes`
(`weedpy cutover status`) and on the metrics port (only the volumes that had traffic or moved).

Once a second it judges every volume native owns by that rule, over the window or since the
volume last came to native, whichever is shorter (evidence of an earlier stint does not count
against the next one): a volume whose share of 5xx answers from native (or of real differences,
where the differ compared its requests) is over the rule's threshold is moved back to Go by the
ordinary move (weedpy/volume_moves.py, `by = "auto_rollback"`), logged (`volume rolled back`) and
counted. Nothing moves a volume to native but an operator, so a volume rolled back stays with Go
until someone moves it again. docs/cutover.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from weedpy.logs import get_logger
from weedpy.metrics import COUNTER, GAUGE, new_metric
from weedpy.serve.evidence import VOLUME_KEEP_S, Evidence, volume_key
from weedpy.serve.live_routes import LiveRoutes
from weedpy.serve.routes import Rollback
from weedpy.serve.volume_owners import GO, NATIVE
from weedpy.volume_moves import MoveRefused

if TYPE_CHECKING:
    from prometheus_client import Metric

    from weedpy.volume_moves import VolumeMoves

__all__ = ["VolumeCutover", "CHECK_S", "DEFAULT_WINDOW_S"]

log = get_logger("volume_rollback")

CHECK_S = 1.0
DEFAULT_WINDOW_S = 60.0  # the window shown without a rule (as for routes)
BY = "auto_rollback"


def _pct(part: int, whole: int) -> float | None:
    return round(part * 100.0 / whole, 3) if whole else None


class VolumeCutover:
    """Per-volume evidence shown and judged (see the module docstring). `moves` is None with
    dual-run routes (no owners: the evidence is shown, nothing is moved)."""

    def __init__(self, live: LiveRoutes, evidence: Evidence, moves: VolumeMoves | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.live = live
        self.evidence = evidence
        self.moves = moves
        self.rollbacks: list[dict[str, Any]] = []
        self._clock = clock
        self._started = clock()  # the window of a volume native owned at start starts here

    def _native(self) -> list[int]:
        return self.moves.owners.native_volumes() if self.moves is not None else []

    def rule(self) -> Rollback | None:
        return self.live.table.volume_rollback

    def window_s(self) -> float:
        rule = self.rule()
        return rule.window_s if rule is not None else DEFAULT_WINDOW_S

    # -- the rule ------------------------------------------------------------------------------

    def breach(self, vid: int, rule: Rollback) -> str | None:
        """Why volume `vid` (owned by native) must go back to Go now (None: it may stay)."""
        assert self.moves is not None
        since = self.moves.owners.native_since(vid)
        since = self._started if since is None else since
        seconds = min(rule.window_s, max(0.0, self._clock() - since))
        w = self.evidence.window(volume_key(vid), seconds)
        return rule.broken_by(w)

    async def check(self) -> list[int]:
        """Move back to Go every volume native owns whose evidence breaks the rule; the volumes moved."""
        self.evidence.volume_keep_s = max(VOLUME_KEEP_S, math.ceil(self.window_s()) + 1)
        self.evidence.prune()
        native = self._native()
        rule = self.rule()
        if rule is None or self.moves is None:
            return []
        moved = []
        for vid in native:
            reason = self.breach(vid, rule)
            if reason is not None and await self._roll_back(vid, reason):
                moved.append(vid)
        return moved

    async def _roll_back(self, vid: int, reason: str) -> bool:
        assert self.moves is not None
        try:
            record = await self.moves.move(vid, GO, BY)
        except MoveRefused as exc:
            if self.moves.owners.side(vid) == GO:  # someone moved it meanwhile
                return False
            log.error("volume rollback failed", volume=vid, reason=reason, by=BY, error=str(exc))
            return False
        rb = {"volume": vid, "from": NATIVE, "to": GO, "reason": reason, "by": BY, "at": time.time(),
              "held_ms": record.get("held_ms")}
        self.rollbacks.append(rb)
        log.warning("volume rolled back", **rb)
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(CHECK_S)
            await self.check()

    # -- what is shown -------------------------------------------------------------------------

    def _shown(self) -> tuple[set[int], set[int]]:
        """(native's volumes, the volumes moved or rolled back): shown whether or not they had traffic."""
        moved = {int(m["vid"]) for m in self.moves.history} if self.moves is not None else set()
        return set(self._native()), moved | {rb["volume"] for rb in self.rollbacks}

    def status(self) -> dict[str, Any]:
        window = self.window_s()
        native, moved = self._shown()
        rolled = {rb["volume"] for rb in self.rollbacks}
        rows = []
        for vid in sorted(set(self.evidence.volumes()) | native | moved):
            w = self.evidence.window(volume_key(vid), window)
            requests = w["requests.native"] + w["requests.go"]
            if not (requests or w["samples"] or vid in native or vid in moved):
                continue
            rows.append({
                "volume": vid, "owner": None if self.moves is None else (NATIVE if vid in native else GO),
                "window_s": window, "requests": requests, "5xx": w["5xx.native"] + w["5xx.go"],
                "requests_native": w["requests.native"], "5xx_native": w["5xx.native"],
                "requests_go": w["requests.go"], "5xx_go": w["5xx.go"],
                "samples": w["samples"], "real": w["real"], "noise": w["noise"],
                "real_pct": _pct(w["real"], w["samples"]), "rolled_back": vid in rolled,
            })
        rule = self.rule()
        return {"window_s": window, "auto_rollback": None if rule is None else rule.to_doc(), "evidence": rows,
                "rollbacks": list(self.rollbacks), "rollbacks_total": len(self.rollbacks)}

    def metrics(self) -> list[Metric]:
        """`weedpy_volume_*` for the gateway's metrics port: counts since start of the volumes that
        had traffic, native's volumes and the ones that moved."""
        native, moved = self._shown()
        vids = sorted(set(self.evidence.volumes()) | native | moved)
        totals = {vid: self.evidence.totals(volume_key(vid)) for vid in vids}

        def per_side(name: str) -> list[tuple[dict[str, str], float]]:
            return [({"volume": str(v), "side": side}, t[f"{name}.{side}"])
                    for v, t in totals.items() for side in (GO, NATIVE) if t[f"{name}.{side}"]]

        def plain(name: str) -> list[tuple[dict[str, str], float]]:
            return [({"volume": str(v)}, t[name]) for v, t in totals.items() if t[name]]

        rolled: dict[int, int] = {}
        for rb in self.rollbacks:
            rolled[rb["volume"]] = rolled.get(rb["volume"], 0) + 1
        families = [
            new_metric("weedpy_volume_requests_total", "Requests naming the volume (file ids, rpcs), by the side "
                       "that answered.", COUNTER, per_side("requests")),
            new_metric("weedpy_volume_5xx_total", "Server errors (5xx, gRPC's server-error statuses) of those "
                       "requests, by side.", COUNTER, per_side("5xx")),
            new_metric("weedpy_volume_differ_samples_total", "Requests naming the volume the differ compared.",
                       COUNTER, plain("samples")),
            new_metric("weedpy_volume_differ_real_total", "Compared requests with a real difference (as judged "
                       "when compared).", COUNTER, plain("real")),
            new_metric("weedpy_volume_differ_noise_total", "Compared requests whose differences the noise control "
                       "explained (as judged when compared).", COUNTER, plain("noise")),
            new_metric("weedpy_volume_rollbacks_total", "Volumes moved back to Go by the [volumes] auto_rollback "
                       "rule.", COUNTER, [({"volume": str(v)}, n) for v, n in sorted(rolled.items())]),
        ]
        if self.moves is not None:
            families.append(new_metric("weedpy_volume_owner", "1 for the side that owns the volume.", GAUGE,
                                       [({"volume": str(v), "owner": NATIVE if v in native else GO}, 1) for v in vids]))
        return families

