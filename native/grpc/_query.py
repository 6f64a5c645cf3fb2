"""Query: select fields from JSON-lines needles, as the weed 4.48 binary answers it
(volume_grpc_query.go over weed/query/json).

For each file id in order: parse it (Go's texts: `Wrong fid format.`, `Invalid fid: ...`; an
unparsable volume id reads as volume 0), read the needle (`volume N not found`, `not found`,
`already deleted`), then:

- a cookie that does not match ends the stream successfully, skipping the remaining ids (Go
  returns its nil error there);
- JSON input sends one stripe per needle: the records of the lines that pass the filter (empty
  when none does);
- CSV input sends nothing (Go's CSV branch is empty).

Where Go dereferences a missing `filter` or `input_serialization` (and crashes the server),
weedpy reads them as empty: no filter field matches nothing, no input sends nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import trio

from native.grpc._common import go_error
from native.grpc._services import Handler, Services
from native.fileid import FidError, NumError, new_volume_id, parse_path
from native.query import Filter, select_records
from native.storage import Deleted, NotFound, StorageError
from native.offload import storage_call
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context

__all__ = ["HANDLERS", "query"]


def _parse_fid(fid: str) -> tuple[int, int, int]:
    """(volume id, needle id, cookie) as Go's ParseFileId + NewVolumeId + ParsePath."""
    comma = fid.find(",")
    if comma <= 0:
        raise go_error("Wrong fid format.")
    try:
        vid = new_volume_id(fid[:comma])
    except NumError:
        vid = 0  # Go ignores NewVolumeId's error
    try:
        key, cookie = parse_path(fid[comma + 1:])
    except FidError as exc:
        raise go_error(str(exc)) from None
    return vid, key, cookie


async def query(svc: Services, req: vs.QueryRequest, ctx: Context) -> AsyncIterator[vs.QueriedStripe]:
    store = svc.store
    selections = list(req.selections)
    f = Filter(req.filter.field, req.filter.operand, req.filter.value)
    json_input = req.input_serialization.HasField("json_input")
    for fid in req.from_file_ids:
        vid, key, cookie = _parse_fid(fid)
        v = await storage_call(store.find_volume, vid)
        if v is None:
            raise go_error(f"volume {vid} not found")
        nv = await storage_call(v.needle_value, key)
        try:
            n = await trio.to_thread.run_sync(lambda: v.read_needle(key, None))
        except Deleted:
            raise go_error("already deleted") from None
        except NotFound:
            raise go_error("not found") from None
        except (StorageError, OSError) as exc:
            raise go_error(str(exc)) from None
        if n.cookie != cookie and not (nv is not None and nv.size == 0):
            return
        if json_input:
            records = await trio.to_thread.run_sync(select_records, n.data, selections, f)
            yield vs.QueriedStripe(records=records)


HANDLERS: Mapping[str, Handler] = {"Query": query}
