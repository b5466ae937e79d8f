"""F1: the owner's `flush ruleset` takes popek's fence away. `popek cloud status` then exits 3 (degraded, as a dead
service), tells « illisible sans root » apart from « ABSENTE », and a run's `cloud` fixture puts the fence back
(root) or says so. Pure logic: nft, the service table and the host's processes are faked."""
from __future__ import annotations

import json
import subprocess
import types

import pytest

from popek.checks.localcloud import fence, lifecycle
from popek.checks.localcloud.state import CloudState
from popek.commands import cloud as cloud_cmd


def _nft_says(monkeypatch, rc: int, stderr: str):
    monkeypatch.setattr(fence, "available", lambda: True)
    monkeypatch.setattr(fence, "_nft", lambda *a, **k: subprocess.CompletedProcess(["nft"], rc, "", stderr))


def test_reading_tells_absent_from_unreadable_without_root(monkeypatch):
    _nft_says(monkeypatch, 1, "Error: No such file or directory\nlist table inet popek\n")
    assert fence.reading() == fence.ABSENT and "ABSENTE" in fence.status()
    # measured: `setpriv --reuid=65534 nft list table inet popek`
    _nft_says(monkeypatch, 1, "Operation not permitted (you must be root)\n"
                              "netlink: Error: cache initialization failed: Operation not permitted\n")
    assert fence.reading() == fence.UNREADABLE and not fence.present()
    assert "illisible sans root" in fence.status() and "ABSENTE" not in fence.status()
    _nft_says(monkeypatch, 0, "")
    monkeypatch.setattr(fence, "counters", lambda: {"refused_input": 2})
    assert fence.reading() == fence.PRESENT and "en place" in fence.status()


@pytest.fixture
def status_of(monkeypatch, tmp_path, capsys):
    """cmd_status over 26 services answering, dataplane mode, the fence as `seen`: (exit code, output)."""
    rows = [lifecycle.Row(f"svc{i}", 1000 + i, "ok", True, f"/log/{i}") for i in range(26)]
    monkeypatch.setattr(cloud_cmd, "_state", lambda: CloudState(tmp_path / "cloud"))
    monkeypatch.setattr(lifecycle, "status", lambda state: ({"dataplane": True}, rows))
    monkeypatch.setattr(lifecycle, "dataplane_module", lambda: None)
    monkeypatch.setattr(fence, "counters", lambda: {})

    def run(seen, stopped=False):
        if stopped:
            monkeypatch.setattr(lifecycle, "status", lambda state: (
                {"dataplane": True}, [lifecycle.Row(r.name, None, "-", False, r.log) for r in rows]))
        monkeypatch.setattr(fence, "reading", lambda: seen)
        code = cloud_cmd.cmd_status(types.SimpleNamespace())
        return code, capsys.readouterr().out
    return run


def test_status_exits_3_when_the_fence_is_gone(status_of):
    code, out = status_of(fence.ABSENT)
    assert code == 3 and "ABSENTE" in out and "26/26 services en marche" in out and "popek cloud up" in out


def test_status_is_0_with_the_fence_and_does_not_claim_absence_without_root(status_of):
    assert status_of(fence.PRESENT)[0] == 0
    code, out = status_of(fence.UNREADABLE)
    assert code == 0 and "illisible sans root" in out and "ABSENTE" not in out


@pytest.fixture
def running(tmp_path, monkeypatch):
    """A state dir of a dataplane cloud with one live service (its pid file read as alive); apply recorded."""
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    (state.run_dir / "mode.json").write_text(json.dumps({"dataplane": True}))
    (state.run_dir / "keystone.pid").write_text("4242")
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda st, name: 4242)
    applied = []
    monkeypatch.setattr(fence, "apply", lambda bridges, taps=(): applied.append((bridges, taps)) or "clôture des instances : en place")
    # the guests' taps as popek's Open vSwitch would list them (faked: no live OVS in a unit test)
    monkeypatch.setattr(lifecycle.dataplane_hooks, "fence_taps", lambda st: ("tap5adb3aee-21",))
    return state, applied


def test_refence_puts_the_fence_back_as_root_only(running, monkeypatch):
    state, applied = running
    monkeypatch.setattr(fence, "reading", lambda: fence.ABSENT)
    said = lifecycle.refence(state, root=True)
    assert applied == [(lifecycle.dataplane_hooks.fence_interfaces(), ("tap5adb3aee-21",))] and "remise" in said
    said = lifecycle.refence(state, root=False)     # not root: nothing applied, the status line is shown
    assert len(applied) == 1 and "ABSENTE" in said
    monkeypatch.setattr(fence, "reading", lambda: fence.UNREADABLE)
    assert "illisible sans root" in lifecycle.refence(state, root=False) and len(applied) == 1


def test_refence_says_nothing_when_fenced_stopped_or_api_only(running, monkeypatch):
    state, applied = running
    monkeypatch.setattr(fence, "reading", lambda: fence.PRESENT)
    assert lifecycle.refence(state, root=True) is None
    monkeypatch.setattr(fence, "reading", lambda: fence.ABSENT)
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda st, name: None)    # stopped: `down` removed it
    assert lifecycle.refence(state, root=True) is None
    (state.run_dir / "mode.json").write_text(json.dumps({"dataplane": False}))
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda st, name: 4242)
    assert lifecycle.refence(state, root=True) is None
    assert applied == []


def test_status_exits_3_when_nft_is_missing_while_the_dataplane_runs(status_of):
    # hG3: nft not found (NO_NFT) cannot show the fence: degraded as ABSENT, not 0
    code, out = status_of(fence.NO_NFT)
    assert code == 3 and "commande nft absente" in out and "cloud dégradé" in out


def test_a_stopped_cloud_is_said_stopped_not_unfenced(status_of):
    """After `down` nothing runs and down removed the fence on purpose: no « ABSENTE … plus tenues à l'écart »."""
    code, out = status_of(fence.ABSENT, stopped=True)
    assert code == 3 and "0/26 services en marche" in out
    assert "ABSENTE" not in out and "dégradé" not in out and "cloud arrêté" in out
    # a stopped cloud whose table is still there (a killed cloud): the fence line as usual
    code, out = status_of(fence.PRESENT, stopped=True)
    assert code == 3 and "en place" in out
