import httpx

from tests.support.procs import MasterProc


def test_master_fixture_serves_cluster_status(master: MasterProc) -> None:
    r = httpx.get(f"{master.url}/cluster/status")
    assert r.status_code == 200
    assert r.json()["IsLeader"] is True
