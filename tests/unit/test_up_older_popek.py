"""`up` on a cloud an older popek started (F0): its privsep fork servers (privsep_fork.py, since removed) still
running, or its agents' configuration naming that file, is not "repaired" in place (the repair neither
regenerates the configuration nor knows those servers: every new privsep context would exec a missing file);
one French line says to restart it. The services' table names only services that exist."""
from __future__ import annotations

import pytest

from popek.checks.localcloud import dataplane, lifecycle, services
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState
from popek.checks.cloud import storage


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    """A running API-only cloud of one real process (`keystone`, a sleeper); repair() recorded, not run."""
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    state.venv.mkdir(parents=True)
    (state.run_dir / "mode.json").write_text('{"dataplane": false, "reason": "test"}')
    state.marker("compute-mode").parent.mkdir(parents=True, exist_ok=True)
    state.marker("compute-mode").write_text("fake\n")
    sleeper = lambda name: Service(name, ["/bin/sleep", "300"], log=str(state.log(name)),  # noqa: E731
                                   cwd=str(state.root))
    table = [sleeper("keystone")]
    monkeypatch.setattr(lifecycle, "table", lambda st, mod: table)
    repaired = []
    monkeypatch.setattr(lifecycle, "repair", lambda *a, **k: repaired.append(a[2]) or [])
    services.start(state, table[0])
    cloud = type("Cloud", (), {"state": state, "sleeper": staticmethod(sleeper), "repaired": repaired})
    yield cloud
    services.sweep(state)


def test_a_running_cloud_of_this_popek_is_repaired(cloud):
    (cloud.state.etc("neutron")).mkdir(parents=True, exist_ok=True)
    (cloud.state.etc("neutron") / "neutron.conf").write_text("[privsep]\nhelper_command = /venv/bin/privsep-helper\n")
    lifecycle._up(cloud.state, False, lambda line: None)
    assert len(cloud.repaired) == 1


def test_an_older_popeks_fork_server_alive_is_not_repaired_but_said(cloud):
    services.start(cloud.state, cloud.sleeper("privsep-fork-nova"))
    with pytest.raises(lifecycle.CloudError) as err:
        lifecycle._up(cloud.state, False, lambda line: None)
    said = str(err.value)
    assert cloud.repaired == []
    assert "\n" not in said and "version précédente de popek" in said and "privsep-fork-nova en marche" in said
    assert "`popek cloud down` puis `popek cloud up`" in said
    assert services.read_pid(cloud.state, "privsep-fork-nova") is not None  # `up` stops nothing: `down` does


def test_an_older_popeks_configuration_with_its_services_running_is_not_repaired(cloud):
    (cloud.state.etc("nova")).mkdir(parents=True, exist_ok=True)
    (cloud.state.etc("nova") / "nova.conf").write_text(
        "[vif_plug_ovs_privileged]\nhelper_command = /venv/bin/python -I -S /src/checks/localcloud/privsep_fork.py "
        "/run/privsep-nova.sock\n")
    with pytest.raises(lifecycle.CloudError, match="nova.conf demandent privsep_fork.py"):
        lifecycle._up(cloud.state, False, lambda line: None)
    assert cloud.repaired == []


def test_the_configuration_alone_of_a_stopped_cloud_is_no_reason(tmp_path):
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    (state.etc("nova")).mkdir(parents=True, exist_ok=True)
    (state.etc("nova") / "nova.conf").write_text("helper_command = python privsep_fork.py\n")
    assert lifecycle.left_by_older_popek(state, running=False) == ""  # a start writes it again
    assert "nova.conf" in lifecycle.left_by_older_popek(state, running=True)


def test_the_start_order_and_the_attach_path_name_only_services_of_the_table(tmp_path):
    state = CloudState(tmp_path / "cloud")
    names = {s.name for s in lifecycle.table(state, dataplane)} | {"RabbitMQ", "MariaDB"}  # their labels too
    for group in (lifecycle.BUS_FREE, lifecycle.BACKGROUND, storage.VOLUME_PATH, storage.ATTACH_PATH):
        assert set(group) <= names, set(group) - names
    assert not hasattr(lifecycle, "COMPUTE_NEEDS")
