"""dataplane.check_openflow_port: a program of the machine's listening on the Open vSwitch agent's OpenFlow
port refuses `up` before anything starts, naming it (popek's bridges would take it as their controller:
that port is no service's health check, so the general port check never saw it). A real listener here."""
import os
import socket

import pytest

from popek.checks.localcloud import dataplane
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import PORTS, CloudState


def test_an_owners_listener_on_the_openflow_port_is_named_and_a_free_port_passes(tmp_path, monkeypatch):
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        state.record_ports(PORTS | {"openflow": s.getsockname()[1]})  # the cloud's map names the port
        with pytest.raises(CloudError) as refused:
            dataplane.check_openflow_port(state)
    said = str(refused.value)
    assert f"le port {state.ports['openflow']} (OpenFlow" in said and f"le processus {os.getpid()} (" in said
    dataplane.check_openflow_port(state)  # closed: nothing to refuse
