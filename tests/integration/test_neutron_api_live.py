"""neutron-api's eager loads on the embedded cloud's own neutron and SQLAlchemy (neutronapi.py): the three
Port backrefs neutron ships as subquery loads, and selectin once neutron-api's entry point has patched them.
Runs the installed cloud venv's Python (reads this host's install: an integration test, not a unit test)."""
import subprocess
from pathlib import Path

import pytest

from popek import paths
from popek.checks.localcloud import neutronapi
from popek.checks.localcloud.state import CloudState

pytestmark = pytest.mark.integration

CLOUD_PYTHON = Path(CloudState(paths.embedded_cloud_dir()).python)
PORT_BACKREFS = ("hints", "trusted", "hardware_offload_type")
PROBE = f"""
import sys
sys.path.insert(0, {str(Path(neutronapi.__file__).parent)!r})
import sqlalchemy.orm as orm
if sys.argv[1] == "patched":
    import neutronapi
    neutronapi.selectin_backrefs(orm)
from neutron.db.models import port_hints, port_trusted, port_hardware_offload_type
from neutron.db import models_v2
orm.configure_mappers()
print(" ".join(getattr(models_v2.Port, name).property.lazy for name in {PORT_BACKREFS!r}))
"""


@pytest.mark.skipif(not CLOUD_PYTHON.exists(), reason="pas de venv du nuage embarqué (neutron absent)")
def test_neutrons_own_port_backrefs_are_subquery_as_shipped_and_selectin_in_neutron_api():
    def lazy(mode):
        out = subprocess.run([str(CLOUD_PYTHON), "-W", "ignore", "-c", PROBE, mode], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()

    # the premise (neutron as shipped) and the change, on the cloud's own neutron and SQLAlchemy
    assert lazy("shipped") == ["subquery"] * 3
    assert lazy("patched") == ["selectin"] * 3
