"""An `up` killed before the cloud was whole (SIGKILL, power loss; SIGTERM before c1878c4) leaves some services
running and lifecycle.STARTING in the run directory: the next `up` resumes the start (its path starts only what
does not run, with its waits, priorities and smoke instance) instead of taking the half-started cloud for a
running one to repair. Measured live (hT, 2026-12-07 09:45): the repair path restarted neutron-rpc-server and
its agents without the start's wait for its consumers; DHCP and router namespaces came ~85 s after
« cloud réparé » (the agents' first RPC timed out), and after a kill during the smoke instance the volume and
object services stayed at nice 19 (« rien à faire »). A whole cloud (no marker) is still repaired in place."""
import json

import pytest

from popek.checks.localcloud import lifecycle
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState

TABLE = [Service("mariadb", [], stage=0), Service("keystone", [], stage=1), Service("nova-compute", [], stage=3)]


@pytest.fixture
def up(tmp_path, monkeypatch):
    """lifecycle._up on a cloud that ran (mode.json, compute-mode, a venv, mariadb alive), every side
    effect replaced by a record in `calls`."""
    st = CloudState(tmp_path / "cloud")
    st.mkdirs()
    st.venv.mkdir(parents=True, exist_ok=True)
    (st.run_dir / "mode.json").write_text(json.dumps({"dataplane": False, "reason": "x"}))
    st.marker("compute-mode").parent.mkdir(parents=True, exist_ok=True)
    st.marker("compute-mode").write_text("fake\n")
    calls = []
    monkeypatch.setattr(lifecycle, "table", lambda state, mod: TABLE)
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda state, name: 42 if name == "mariadb" else None)
    monkeypatch.setattr(lifecycle.services, "check_ports_free", lambda svc: None)
    monkeypatch.setattr(lifecycle, "repair", lambda *a, **k: calls.append("repair") or [])
    monkeypatch.setattr(lifecycle, "_fence_up", lambda state, mod, log: None)
    monkeypatch.setattr(lifecycle.apt, "install", lambda packages, log=None: [])
    monkeypatch.setattr(lifecycle.install, "ensure_venv", lambda *a, **k: None)
    monkeypatch.setattr(lifecycle.install, "bundled_uv", lambda: None)
    monkeypatch.setattr(lifecycle, "_build_images", lambda state, log: None)
    monkeypatch.setattr(lifecycle, "stop_all", lambda state, log, settle=True: calls.append("stop_all") or [])

    failure = []

    def start_all(state, mod, mode, progress, log, force=False, meanwhile=None, smoke=None):
        calls.append(("start", (state.run_dir / lifecycle.STARTING).exists()))
        if failure:
            raise failure[0]

    monkeypatch.setattr(lifecycle, "_start_all", start_all)

    def go(fail=None):
        failure[:] = [fail] if fail else []
        lines = []
        lifecycle._up(st, dataplane=False, log=lines.append)
        return lines
    go.state, go.calls = st, calls
    return go


def test_a_whole_cloud_that_runs_is_repaired_in_place(up):
    up()
    assert up.calls == ["repair"]


def test_a_start_killed_half_way_is_resumed_by_the_next_up(up):
    (up.state.run_dir / lifecycle.STARTING).write_text("")     # what a killed `up` leaves
    lines = up()
    assert up.calls == [("start", True)]                       # the start's path, not repair
    assert not (up.state.run_dir / lifecycle.STARTING).exists()    # whole now
    assert any("reprend" in line for line in lines), lines


def test_a_start_marks_itself_until_the_cloud_is_whole(up, monkeypatch):
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda state, name: None)    # a stopped cloud
    up()
    assert up.calls == [("start", True)] and not (up.state.run_dir / lifecycle.STARTING).exists()


def test_a_resumed_start_that_fails_is_left_as_it_is_and_resumed_again(up):
    (up.state.run_dir / lifecycle.STARTING).write_text("")
    with pytest.raises(lifecycle.CloudError):
        up(fail=lifecycle.CloudError("nova-compute n'est pas « up »"))
    assert up.calls == [("start", True)]                        # not stopped: it was running
    assert (up.state.run_dir / lifecycle.STARTING).exists()
