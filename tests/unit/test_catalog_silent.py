"""C35 on the embedded cloud: APIs of the catalog that time out are named with the silent database or bus
behind them (MariaDB frozen, live 2026-12-06: Nova and Neutron timed out, the verdict named only their
addresses). Forged answers; the step's own function is called."""
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from popek.checks.cloud import catalog, components
from popek.steps import cloud_catalog

ENTRIES = [{"name": "nova", "type": "compute", "endpoints": ["http://127.0.0.1:8774/v2.1"]},
           {"name": "keystone", "type": "identity", "endpoints": ["http://127.0.0.1:5000/v3"]}]
MARIADB = "la base de données MariaDB (unix:/x/mysqld.sock) ne répond pas en 3 s (aucun salut)"


class Evidence:
    def json(self, *_):
        pass

    def figure(self, *_):
        pass


@pytest.fixture
def nova_times_out(monkeypatch):
    monkeypatch.setattr(catalog, "version_answer", lambda session, entry: {"document": None})
    monkeypatch.setattr(catalog, "answer_text", lambda name, found: f"{name} → injoignable (ConnectTimeout)")
    probed = []
    monkeypatch.setattr(components, "silent_backends", lambda etc: probed.append(etc) or [MARIADB])
    return probed


def test_the_embedded_clouds_silent_database_is_named_beside_the_silent_api(nova_times_out):
    cloud = NS(embedded_root=Path("/e/cloud"))
    with pytest.raises(AssertionError) as info:
        cloud_catalog.other_apis(cloud, NS(session=None), ENTRIES, Evidence())
    assert "nova (compute) → injoignable (ConnectTimeout)" in str(info.value) and MARIADB in str(info.value)
    assert nova_times_out == [Path("/e/cloud/etc")]


def test_another_cloud_is_not_probed_for_a_database(nova_times_out):
    with pytest.raises(AssertionError) as info:
        cloud_catalog.other_apis(NS(embedded_root=None), NS(session=None), ENTRIES, Evidence())
    assert "MariaDB" not in str(info.value) and nova_times_out == []
