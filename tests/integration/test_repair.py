"""A degraded embedded cloud is repaired in place by `up`, never torn down (lifecycle.repair).

On the running cloud (skip otherwise): one service killed, then one frozen (SIGSTOP: its socket still
accepts, only its state tells), then one that cannot start again. Each time `up` restarts that service
only: every other service's pid, and every guest's QEMU, is the same after as before; a killed service
is back in < 30 s. When the restart fails, `up` says which service with its log's last lines, raises,
and stops nothing else; a second `up` once the cause is gone repairs it. Kills and restarts services of
the shared cloud: run it under `flock -x /tmp/popek-cloud.lock`.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from popek.checks.localcloud import lifecycle, services
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import CloudState

from helpers import running_cloud

pytestmark = [pytest.mark.integration, pytest.mark.cloud]


@pytest.fixture(scope="module")
def state():
    state = running_cloud(why_not_whole="ne tourne pas en entier")
    if os.geteuid() != 0:
        pytest.skip("il faut être root (les services du cloud sont à root)")
    return state


def pids(state: CloudState) -> dict[str, int | None]:
    """Every service's pid, and every guest QEMU's (`qemu:<pid>`): what must not change."""
    _, rows = lifecycle.status(state)
    found = {r.name: r.pid for r in rows}
    for pid in _qemus():
        found[f"qemu:{pid}"] = pid
    return found


def _qemus() -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if open(f"/proc/{entry}/comm").read().startswith("qemu-system"):
                    out.append(int(entry))
            except OSError:
                continue
    return out


def _table(state):
    mode = lifecycle.read_mode(state)
    return lifecycle.table(state, lifecycle.dataplane_module() if mode.get("dataplane") else None)


def _up(state) -> tuple[float, list[str]]:
    lines: list[str] = []
    t0 = time.monotonic()
    lifecycle.up(state, dataplane=None, log=lines.append)
    return time.monotonic() - t0, lines


def _kill_session(pid: int, sig) -> None:
    for member in services.session_members(pid):
        os.kill(member, sig)


@pytest.mark.parametrize("victim", ["glance-api", "nova-scheduler"])
def test_a_killed_service_is_back_in_30_s_and_nothing_else_moved(state, victim):
    before = pids(state)
    _kill_session(before[victim], signal.SIGKILL)
    assert lifecycle.diagnose(state, _table(state)) == {victim: "arrêté"}
    took, lines = _up(state)
    after = pids(state)
    print(f"up on a cloud with {victim} killed ({took:.1f} s):\n  " + "\n  ".join(lines))
    print(f"pids before: {before}\npids after:  {after}")
    assert took < 30, lines
    assert after[victim] not in (None, before[victim])
    assert {k: v for k, v in after.items() if k != victim} == {k: v for k, v in before.items() if k != victim}
    assert any(victim in line and "réparé" in line for line in lines), lines


def test_a_frozen_service_is_killed_then_restarted(state):
    victim = "placement-api"
    before = pids(state)
    _kill_session(before[victim], signal.SIGSTOP)
    try:
        took, lines = _up(state)
    finally:
        for member in services.session_members(before[victim]):  # if up failed to kill it
            os.kill(member, signal.SIGCONT)
    after = pids(state)
    print(f"up on a cloud with {victim} frozen ({took:.1f} s):\n  " + "\n  ".join(lines))
    assert any(f"{victim} figé" in line for line in lines), lines
    assert services.session_members(before[victim]) == []
    assert after[victim] not in (None, before[victim])
    assert {k: v for k, v in after.items() if k != victim} == {k: v for k, v in before.items() if k != victim}


def test_a_service_that_cannot_start_is_named_with_its_log_and_nothing_else_stops(state):
    victim = "swift-object"
    conf = state.etc("swift") / "object-server.conf"
    hidden = conf.with_name("object-server.conf.hidden-by-test")
    before = pids(state)
    conf.rename(hidden)
    try:
        _kill_session(before[victim], signal.SIGKILL)
        with pytest.raises(CloudError) as failed:
            _up(state)
        message = str(failed.value)
        print(f"up with {victim} unable to start:\n{message}")
        assert victim in message and f"dernières lignes de {state.log(victim)}" in message
        after = pids(state)
        assert after[victim] is None
        assert {k: v for k, v in after.items() if k != victim} == {k: v for k, v in before.items() if k != victim}
    finally:
        hidden.rename(conf)
    took, lines = _up(state)  # the cause gone, the next up repairs it
    assert pids(state)[victim] is not None, lines
