"""The warm `up`'s end (issue #17): the smoke instance that delivered is deleted without waiting (~2 s), its
deletion recorded until dataplane.settle_smoke sees it gone (the next smoke, `down`, a running cloud's
repair); a deletion that failed is asked again, and one that still fails is named, never silently left."""
import json
import types

import pytest

from popek.checks.localcloud import dataplane
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import CloudState


class Compute:
    """A stand-in for openstacksdk's compute proxy: `states` is what find_server returns in turn (None: 404)."""

    def __init__(self, states=(), delete_takes=0):
        self.states = list(states)
        self.calls = []
        self.delete_takes = delete_takes

    def find_server(self, sid, ignore_missing=True):
        self.calls.append(("find", sid))
        state = self.states.pop(0) if len(self.states) > 1 else (self.states[0] if self.states else None)
        return None if state is None else types.SimpleNamespace(id=sid, status=state[0], task_state=state[1],
                                                                  fault={"message": "boom"} if state[0] == "ERROR" else None)

    def delete_server(self, server, ignore_missing=True):
        self.calls.append(("delete", server.id))

    def wait_for_delete(self, server, interval=2, wait=120):
        self.calls.append(("wait", server.id))
        if self.delete_takes is None:
            raise TimeoutError("still there")


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    st = CloudState(tmp_path / "cloud")
    st.mkdirs()
    holder = types.SimpleNamespace(compute=Compute())
    monkeypatch.setattr(dataplane.bootstrap, "connect", lambda state, cloud="popek-admin": holder)
    return st, holder


def pend(st, sid="s1"):
    (st.run_dir / dataplane.SMOKE_PENDING).write_text(json.dumps({"id": sid, "name": "popek-essai-abc"}))


def test_nothing_pending_asks_nothing(cloud):
    st, conn = cloud
    assert dataplane.settle_smoke(st) is None and conn.compute.calls == []


def test_a_deletion_in_progress_is_awaited_then_forgotten(cloud):
    st, conn = cloud
    conn.compute.states = [("ACTIVE", "deleting")]
    pend(st)
    assert "popek-essai-abc" in dataplane.settle_smoke(st)
    assert conn.compute.calls == [("find", "s1"), ("wait", "s1")]  # not asked twice
    assert not (st.run_dir / dataplane.SMOKE_PENDING).exists()


def test_a_server_already_gone_is_forgotten(cloud):
    st, conn = cloud
    conn.compute.states = [None]
    pend(st)
    assert dataplane.settle_smoke(st) and conn.compute.calls == [("find", "s1")]
    assert not (st.run_dir / dataplane.SMOKE_PENDING).exists()


def test_a_failed_deletion_is_asked_again(cloud):
    st, conn = cloud
    conn.compute.states = [("ERROR", None)]
    pend(st)
    dataplane.settle_smoke(st)
    assert conn.compute.calls == [("find", "s1"), ("delete", "s1"), ("wait", "s1")]


def test_a_deletion_that_keeps_failing_is_named_and_kept(cloud):
    st, conn = cloud
    conn.compute.states = [("ERROR", None)]
    conn.compute.delete_takes = None
    pend(st)
    with pytest.raises(CloudError) as exc:
        dataplane.settle_smoke(st, timeout=5)
    said = str(exc.value)
    assert "popek-essai-abc (s1) n'a pas pu être supprimée en 5 s" in said and "ERROR : boom" in said
    assert (st.run_dir / dataplane.SMOKE_PENDING).exists()  # the next settle tries again


def test_a_smoke_that_delivered_is_recorded_before_its_deletion_and_not_awaited(cloud, monkeypatch):
    st, conn = cloud
    seen = []
    image = types.SimpleNamespace(id="i", properties={dataplane.compute.TINY_MARKER: "popek-tiny: ready"})
    conn.image = types.SimpleNamespace(find_image=lambda name: image)
    conn.network = types.SimpleNamespace(find_network=lambda name: types.SimpleNamespace(id="n"))
    conn.compute.find_flavor = lambda name: types.SimpleNamespace(id="f")
    conn.compute.create_server = lambda **kw: types.SimpleNamespace(id="s2", name=kw["name"])
    real_delete = conn.compute.delete_server

    def delete(server, ignore_missing=True):
        seen.append(json.loads((st.run_dir / dataplane.SMOKE_PENDING).read_text())["id"])
        real_delete(server)
    conn.compute.delete_server = delete
    monkeypatch.setattr(dataplane.compute, "wait_active", lambda *a: None)
    monkeypatch.setattr(dataplane.compute, "lease_or_reboot", lambda *a, **k: None)
    monkeypatch.setattr(dataplane.compute, "console_log", lambda *a, **k:
                        "popek-tiny: metadata instance-id i-1\npopek-tiny: ready popek-essai 10.0.0.5/24\n")
    dataplane.smoke(st)
    assert seen == ["s2"] and ("delete", "s2") in conn.compute.calls
    assert not any(c[0] == "wait" for c in conn.compute.calls)


def test_a_smoke_that_did_not_deliver_is_deleted_and_awaited(cloud, monkeypatch):
    st, conn = cloud
    image = types.SimpleNamespace(id="i", properties={dataplane.compute.TINY_MARKER: "popek-tiny: ready"})
    conn.image = types.SimpleNamespace(find_image=lambda name: image)
    conn.network = types.SimpleNamespace(find_network=lambda name: types.SimpleNamespace(id="n"))
    conn.compute.find_flavor = lambda name: types.SimpleNamespace(id="f")
    conn.compute.create_server = lambda **kw: types.SimpleNamespace(id="s3", name=kw["name"])
    monkeypatch.setattr(dataplane.compute, "wait_active", lambda *a: None)
    monkeypatch.setattr(dataplane.compute, "lease_or_reboot", lambda *a, **k: None)
    monkeypatch.setattr(dataplane.compute, "console_log", lambda *a, **k: "popek-tiny: dhcp failed\n")
    with pytest.raises(CloudError):
        dataplane.smoke(st)
    assert conn.compute.calls[-2:] == [("delete", "s3"), ("wait", "s3")]
    assert not (st.run_dir / dataplane.SMOKE_PENDING).exists()
