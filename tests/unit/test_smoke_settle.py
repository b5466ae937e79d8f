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


def fake_cloud(tmp_path, monkeypatch):
    """(a state dir, the connection bootstrap.connect gives: `compute` a Compute) for dataplane's smoke."""
    st = CloudState(tmp_path / "cloud")
    st.mkdirs()
    holder = types.SimpleNamespace(compute=Compute())
    monkeypatch.setattr(dataplane.bootstrap, "connect", lambda state, cloud, **kw: holder)
    return st, holder


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    return fake_cloud(tmp_path, monkeypatch)


def bootable(conn):
    """What dataplane.smoke finds before it boots: the tiny image (marked ready), the network, the flavor."""
    image = types.SimpleNamespace(id="i", properties={dataplane.compute.TINY_MARKER: "popek-tiny: ready"})
    conn.image = types.SimpleNamespace(find_image=lambda name: image)
    conn.network = types.SimpleNamespace(find_network=lambda name: types.SimpleNamespace(id="n"))
    conn.compute.find_flavor = lambda name: types.SimpleNamespace(id="f")


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
    bootable(conn)
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
    bootable(conn)
    conn.compute.create_server = lambda **kw: types.SimpleNamespace(id="s3", name=kw["name"])
    monkeypatch.setattr(dataplane.compute, "wait_active", lambda *a: None)
    monkeypatch.setattr(dataplane.compute, "lease_or_reboot", lambda *a, **k: None)
    monkeypatch.setattr(dataplane.compute, "console_log", lambda *a, **k: "popek-tiny: dhcp failed\n")
    with pytest.raises(CloudError):
        dataplane.smoke(st)
    assert conn.compute.calls[-2:] == [("delete", "s3"), ("wait", "s3")]
    assert not (st.run_dir / dataplane.SMOKE_PENDING).exists()


# --- `popek cloud down` settles the smoke first: it must still stop everything (review hR H1) -------------

@pytest.fixture
def stopping(tmp_path, monkeypatch):
    """A dataplane cloud whose nova-api and nova-compute look alive, a smoke deletion pending, and
    services.stop / sweep / teardown / fence recorded instead of run."""
    from popek.checks.localcloud import lifecycle

    st = CloudState(tmp_path / "cloud")
    st.mkdirs()
    (st.run_dir / "mode.json").write_text(json.dumps({"dataplane": True}))
    for name in ("nova-api", "nova-compute", "keystone"):
        st.pidfile(name).write_text("{}")
    pend(st)
    stopped = []
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda state, name: 4242)
    monkeypatch.setattr(lifecycle.services, "stop", lambda state, names: stopped.extend(names))
    monkeypatch.setattr(lifecycle.services, "sweep", lambda state: [])
    monkeypatch.setattr(lifecycle.dataplane_hooks, "teardown", lambda state: stopped.append("teardown"))
    monkeypatch.setattr(lifecycle.fence, "remove", lambda: None)
    return lifecycle, st, stopped


def test_down_stops_everything_when_the_api_refuses(stopping, monkeypatch):
    from keystoneauth1.exceptions import ConnectFailure

    lifecycle, st, stopped = stopping

    def refused(state, cloud="popek-admin", **kw):
        raise ConnectFailure("Unable to establish connection to http://127.0.0.1:5000/v3/auth/tokens")
    monkeypatch.setattr(dataplane.bootstrap, "connect", refused)
    said = []
    assert lifecycle.stop_all(st, said.append) == []
    assert {"nova-api", "nova-compute", "keystone", "teardown"} <= set(stopped)
    assert len(said) == 1 and "nouvel essai" in said[0] and "instance d'essai" in said[0], said
    assert (st.run_dir / dataplane.SMOKE_PENDING).exists()  # still to settle at the next up


def test_down_does_not_hang_on_an_api_that_never_answers(stopping, monkeypatch):
    """A SIGSTOPped keystone: the kernel accepts the connection, nobody reads. The real connect/SDK path,
    with the per-call timeout shortened to 1 s; the settle gives up and the services are stopped."""
    import socket
    import time

    import yaml

    lifecycle, st, stopped = stopping
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # never accept()ed: connect() succeeds, the request is never answered
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v3"
        auth = {"auth_url": url, "username": "u", "password": "p", "project_name": "x",
                "user_domain_name": "Default", "project_domain_name": "Default"}
        st.clouds_yaml.write_text(yaml.safe_dump({"clouds": {"popek": {
            "auth": auth, "region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}}}))
        monkeypatch.setattr(dataplane, "SETTLE_API_TIMEOUT", 1.0)
        said = []
        t0 = time.monotonic()
        assert lifecycle.stop_all(st, said.append) == []
        took = time.monotonic() - t0
    finally:
        silent.close()
    assert took < 15, took
    assert {"nova-api", "nova-compute", "keystone", "teardown"} <= set(stopped)
    assert len(said) == 1 and "nouvel essai" in said[0] and "instance d'essai" in said[0], said


def test_a_failed_up_stops_without_asking_nova(stopping, monkeypatch):
    lifecycle, st, stopped = stopping
    asked = []
    monkeypatch.setattr(dataplane.bootstrap, "connect", lambda *a, **k: asked.append(a) or pytest.fail("asked"))
    lifecycle.stop_all(st, print, settle=False)
    assert asked == [] and "nova-api" in stopped


def test_a_failed_up_stops_its_services_and_keeps_its_error(stopping, monkeypatch):
    """up's failure path (`except BaseException` in _up): the services stopped without asking nova, and the
    error raised is up's own, not one of a settle's API call."""
    from keystoneauth1.exceptions import ConnectFailure

    lifecycle, st, stopped = stopping
    asked = []

    def refused(*a, **k):
        asked.append(a)
        raise ConnectFailure("Unable to establish connection")
    monkeypatch.setattr(dataplane.bootstrap, "connect", refused)
    monkeypatch.setattr(lifecycle, "_choose_mode", lambda dp: (lifecycle.dataplane_hooks, {"dataplane": True}))
    monkeypatch.setattr(lifecycle.apt, "install", lambda *a, **k: [])
    monkeypatch.setattr(lifecycle, "_build_images", lambda *a: None)
    monkeypatch.setattr(lifecycle.install, "ensure_venv", lambda *a, **k: None)
    monkeypatch.setattr(lifecycle.install, "bundled_uv", lambda: None)

    def start_fails(*a, **k):
        raise CloudError("nova-compute n'est pas « up »")
    monkeypatch.setattr(lifecycle, "_start_all", start_fails)
    with pytest.raises(CloudError, match="nova-compute"):
        lifecycle._up(st, True, lambda line: None)
    assert asked == [] and {"nova-api", "nova-compute", "teardown"} <= set(stopped)
