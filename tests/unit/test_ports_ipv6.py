"""epmd binds IPv6's loopback ::1 as well as 127.0.0.1 (even with `-address 127.0.0.1`) and exits at once, silently,
when [::1]:port is taken (measured with /usr/bin/epmd: an IPv6-only listener on [::1]:P, `epmd -address 127.0.0.1
-port P` gone within 2 s while 127.0.0.1:P was free). Its port is therefore probed on both loopbacks, and a listener
on ::1 alone moves it; the other services bind 127.0.0.1 only and keep their port. Real sockets of the test's own
(on ports the kernel hands out) for port_taken; a fake holder elsewhere."""
import os
import socket

import pytest

from popek.checks.localcloud import lifecycle, ports, services
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import PORTS, CloudState

EPHEMERAL = (32768, 60999)
WHO6 = "le processus 4343 (python3)"


def v6_listener():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"pas d'IPv6 sur la boucle locale ici ({exc})")
    s.listen(1)
    return s


def test_a_listener_on_ipv6_loopback_only_is_seen_on_1_not_on_127_0_0_1():
    with v6_listener() as s:
        port = s.getsockname()[1]
        assert services.port_taken(port) is None  # 127.0.0.1:port is free
        who = services.port_taken(port, "::1")
        assert who is not None and who.startswith(f"le processus {os.getpid()} (")
        assert services.port_taken_loopback(port) == who
        epmd = services.Service("epmd", ["/usr/bin/epmd"], health=f"tcp://127.0.0.1:{port}", ipv6_loopback=True)
        other = services.Service("keystone", ["x"], health=f"http://127.0.0.1:{port}/")
        assert services.holder(epmd, port) == who and services.holder(other, port) is None
        with pytest.raises(CloudError, match=f"le port {port} de epmd"):
            lifecycle._check_port_free(epmd)
        lifecycle._check_port_free(other)


def test_choose_probes_a_key_with_its_own_holder():
    chosen, moves = ports.choose({"epmd": 4369, "keystone": 5000}, {}, lambda p: None, EPHEMERAL,
                                 taken_by_key={"epmd": lambda p: WHO6 if p == 4369 else None})
    assert chosen == {"epmd": 14369, "keystone": 5000} and moves == [("epmd", 4369, 14369, WHO6)]


def test_settle_moves_epmd_off_a_port_taken_on_1_only_and_leaves_keystone(tmp_path, monkeypatch):
    state = CloudState(tmp_path)
    monkeypatch.setattr(services, "port_taken",
                        lambda port, host="127.0.0.1": WHO6 if host == "::1" and port in (4369, 5000) else None)
    monkeypatch.setattr(ports, "ephemeral_range", lambda: EPHEMERAL)
    said = []
    assert lifecycle.settle_ports(state, None, said.append) == [("epmd", 4369, 14369, WHO6)]
    assert state.ports == PORTS | {"epmd": 14369} and said == [f"epmd : 4369 occupé par {WHO6}, pris 14369"]
