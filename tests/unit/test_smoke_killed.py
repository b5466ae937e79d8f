"""The dataplane's smoke instance of an `up` killed while the guest boots (SIGKILL: no `finally`) is not lost:
dataplane.smoke records its name before nova is asked (its id once known), and the next settle_smoke (the next
smoke, `down`, a running cloud's repair) finds it by that name and deletes it. Measured live before the fix
(hT, 2026-12-07 09:49): popek-essai-997db0 left ACTIVE, the next `up` « rien à faire »."""
import json
import types

import pytest

from popek.checks.localcloud import dataplane

from test_smoke_settle import bootable, fake_cloud


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    return fake_cloud(tmp_path, monkeypatch)


def test_the_smoke_is_recorded_by_name_before_nova_is_asked(cloud, monkeypatch):
    st, conn = cloud
    seen = []
    bootable(conn)

    def create_server(**kw):
        seen.append(json.loads((st.run_dir / dataplane.SMOKE_PENDING).read_text()))
        assert seen[-1] == {"name": kw["name"]} and kw["name"].startswith("popek-essai-")
        return types.SimpleNamespace(id="s4", name=kw["name"])

    def killed(*a):     # the guest boots; `up` is killed here (SIGKILL: nothing after runs)
        seen.append(json.loads((st.run_dir / dataplane.SMOKE_PENDING).read_text()))
        raise SystemExit("killed")
    conn.compute.create_server = create_server
    monkeypatch.setattr(dataplane.compute, "wait_active", killed)
    with pytest.raises(SystemExit):
        dataplane.smoke(st)
    assert seen[1] == {"id": "s4", "name": seen[0]["name"]}     # what a SIGKILL here would leave
    # (an exception, unlike SIGKILL, runs smoke's finally: the guest deleted, awaited, then forgotten)
    assert conn.compute.calls[-2:] == [("delete", "s4"), ("wait", "s4")]
    assert not (st.run_dir / dataplane.SMOKE_PENDING).exists()


def test_a_record_with_only_a_name_is_found_by_it_deleted_and_forgotten(cloud):
    st, conn = cloud
    conn.compute.states = [("ACTIVE", None)]       # booting, no deletion asked: the killed up's guest
    (st.run_dir / dataplane.SMOKE_PENDING).write_text(json.dumps({"name": "popek-essai-0ff1ce"}))
    said = dataplane.settle_smoke(st)
    assert conn.compute.calls == [("find", "popek-essai-0ff1ce"), ("delete", "popek-essai-0ff1ce"),
                                  ("wait", "popek-essai-0ff1ce")]
    assert "popek-essai-0ff1ce" in said and not (st.run_dir / dataplane.SMOKE_PENDING).exists()


def test_a_name_nova_never_got_is_forgotten(cloud):
    st, conn = cloud
    conn.compute.states = [None]                   # killed before the POST reached nova
    (st.run_dir / dataplane.SMOKE_PENDING).write_text(json.dumps({"name": "popek-essai-0ff1ce"}))
    dataplane.settle_smoke(st)
    assert conn.compute.calls == [("find", "popek-essai-0ff1ce")]
    assert not (st.run_dir / dataplane.SMOKE_PENDING).exists()
