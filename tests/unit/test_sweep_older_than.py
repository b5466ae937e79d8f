"""`popek cloud sweep --older-than M`: a live run refreshes its heartbeat every ledger.HEARTBEAT_EVERY s (2 min),
so an age below LIVE_HEARTBEAT_AGE (but not 0, which means every run) would take a live run for dead and delete
its resources: refused with one French line, exit 2, before the cloud is even asked."""
import pytest

from popek import cli
from popek.checks.cloud import connection, ledger


@pytest.fixture
def no_cloud(monkeypatch):
    asked = []
    monkeypatch.setattr(connection, "connect", lambda *a, **k: asked.append(a) or (_ for _ in ()).throw(
        connection.CloudUnavailable("pas de cloud ici", True)))
    return asked


@pytest.mark.parametrize("minutes", ["1", "2", "0.5", "-3"])
def test_an_age_a_live_runs_heartbeat_can_reach_is_refused_before_the_cloud_is_asked(no_cloud, minutes, capsys):
    code = cli.main(["cloud", "sweep", "--dry-run", "--older-than", minutes])
    err = capsys.readouterr().err
    assert code == 2 and not no_cloud
    assert "serait pris pour mort" in err and "au moins 2,5 min" in err and "ou 0" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("minutes", ["0", "2.5", "30"])
def test_zero_and_ages_beyond_a_heartbeat_go_on_to_the_cloud(no_cloud, minutes, capsys):
    code = cli.main(["cloud", "sweep", "--dry-run", "--older-than", minutes])
    assert code == 1 and no_cloud, capsys.readouterr().err     # the cloud was asked (here: none)


def test_the_floor_is_above_the_heartbeats_period():
    assert ledger.LIVE_HEARTBEAT_AGE > ledger.HEARTBEAT_EVERY
