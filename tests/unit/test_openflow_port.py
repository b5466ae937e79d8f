"""dataplane.check_openflow_port: a program of the machine's listening on the Open vSwitch agent's OpenFlow
port refuses `up` before anything starts, naming it (popek's bridges would take it as their controller:
that port is no service's health check, so the general port check never saw it). A real listener here."""
import os
import socket

import pytest

from popek.checks.localcloud import dataplane
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import CloudState


def test_an_owners_listener_on_the_openflow_port_is_named_and_a_free_port_passes(tmp_path, monkeypatch):
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        monkeypatch.setattr(dataplane, "OPENFLOW_PORT", s.getsockname()[1])
        with pytest.raises(CloudError) as refused:
            dataplane.check_openflow_port(state)
    said = str(refused.value)
    assert f"le port {dataplane.OPENFLOW_PORT} (OpenFlow" in said and f"le processus {os.getpid()} (" in said
    dataplane.check_openflow_port(state)  # closed: nothing to refuse
