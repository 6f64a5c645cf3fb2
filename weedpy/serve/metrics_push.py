"""Pushing the metrics to a Prometheus push gateway, as Go's volume server does.

Go's volume server asks its master for a push gateway once, at start-up (GetMasterConfiguration
answers what `weed master -metrics.address=HOST:PORT -metrics.intervalSeconds=N` set), and when
there is one it PUTs its whole registry to the group `job=volumeServer`, `instance=<-ip>:<-port>`
at once and then every N seconds, logging and going on when a push fails
(weed/stats/metrics.go `LoopPushingMetric`). `push_loop` does the same with the text the metrics
port serves (docs/metrics.md). The PUT is prometheus-client's `push_to_gateway`, a blocking urllib
call, so it runs in a worker thread, never on the event loop; its body is our own text, written as
Go names the families (prometheus-client's writer would rename Go's counters).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from weedpy.logs import get_logger

__all__ = ["PUSH_JOB", "push_instance", "push_text", "push_in_thread", "push_loop"]

log = get_logger("weedpy.metrics_push")

PUSH_JOB = "volumeServer"  # Go's job name for a volume server
DEFAULT_INTERVAL_S = 15  # Go's interval when the master's is negative
PUSH_TIMEOUT_S = 30.0  # a push that hangs must not pile up behind the next ones

Push = Callable[[str, str, bytes], Awaitable[None]]


def push_instance(ip: str, port: int) -> str:
    """The `instance` Go groups by: util.JoinHostPort(-ip, -port)."""
    if ":" in ip and not (ip.startswith("[") and ip.endswith("]")):
        return f"[{ip}]:{port}"
    return f"{ip}:{port}"


def push_text(gateway: str, instance: str, text: bytes) -> None:
    """PUT `text` (the text exposition format) as the group job=volumeServer, instance=`instance`,
    replacing what the group held. Blocking; raises on a failure (an HTTP error included)."""
    from prometheus_client import CollectorRegistry, push_to_gateway  # deferred: only a pushing server loads it
    from prometheus_client.exposition import default_handler  # deferred: as above

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes):
        return default_handler(url, method, timeout, headers, text)

    push_to_gateway(gateway, PUSH_JOB, CollectorRegistry(), grouping_key={"instance": instance},
                    timeout=PUSH_TIMEOUT_S, handler=handler)


async def push_in_thread(gateway: str, instance: str, text: bytes) -> None:
    """`push_text` in a worker thread (a push gateway that hangs is abandoned when we stop)."""
    await trio.to_thread.run_sync(push_text, gateway, instance, text, abandon_on_cancel=True)


async def push_loop(
    gather: Callable[[], Awaitable[bytes]], gateway: str, interval_s: int, instance: str, *,
    push: Push = push_in_thread,
) -> None:
    """Push what `gather()` returns to `gateway` now and every `interval_s` seconds, forever;
    nothing when the master named no gateway or an interval of 0 (Go's rule)."""
    if not gateway or interval_s == 0:
        return
    interval = interval_s if interval_s > 0 else DEFAULT_INTERVAL_S
    log.info("pushing metrics", gateway=gateway, interval_s=interval, job=PUSH_JOB, instance=instance)
    while True:
        try:
            await push(gateway, instance, await gather())
        except Exception as exc:  # noqa: BLE001 - Go logs a failed push and pushes again next time
            log.warning("could not push metrics to prometheus push gateway", gateway=gateway, error=str(exc))
        await trio.sleep(interval)
