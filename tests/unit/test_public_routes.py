"""The dataplane's public network against the host's own routes (hG): a route of another interface of the
machine that overlaps it (an owner's bridge, a libvirt network, a VPN, Docker) refuses `up` in one French line
naming that route and its interface; popek's own bridge's route, the default route and unrelated networks
(virt-manager's virbr0 192.168.122.0/24, the uplink, Docker's 172.17.0.0/16) do not. Recorded `ip -j route`."""
import pytest

from popek.checks.localcloud import bootstrap, dataplane
from popek.checks.localcloud.errors import CloudError

ROUTES = [{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
          {"dst": "192.0.2.0/24", "dev": "eth0", "prefsrc": "192.0.2.2"},
          {"dst": "192.168.122.0/24", "dev": "virbr0", "prefsrc": "192.168.122.1"},
          {"dst": "172.17.0.0/16", "dev": "docker0", "prefsrc": "172.17.0.1"},
          {"dst": "198.51.100.0/24", "dev": dataplane.EXT_BRIDGE, "prefsrc": "198.51.100.1"}]


def test_the_owners_libvirt_network_docker_the_uplink_and_popeks_own_route_are_no_clash():
    dataplane.check_public_routes(dataplane.public_gateway_cidr(), ROUTES)
    assert bootstrap.PUBLIC_CIDR == "198.51.100.0/24"  # not virt-manager's 192.168.122.0/24


def test_an_owners_network_over_the_public_range_is_refused_naming_it():
    owner = ROUTES + [{"dst": "198.51.100.128/25", "dev": "virbr1", "prefsrc": "198.51.100.129"}]
    with pytest.raises(CloudError) as refused:
        dataplane.check_public_routes(dataplane.public_gateway_cidr(), owner)
    said = str(refused.value)
    assert "198.51.100.128/25 par virbr1" in said and "PUBLIC_CIDR" in said and dataplane.EXT_BRIDGE not in said
    with pytest.raises(CloudError):  # a wider one too (a VPN's 198.51.0.0/16)
        dataplane.check_public_routes("198.51.100.1/24", ROUTES[:2] + [{"dst": "198.51.0.0/16", "dev": "tun0"}])


def test_a_full_tunnel_vpn_and_broader_routes_via_a_gateway_are_no_clash():
    """F5: OpenVPN's `redirect-gateway def1` (0.0.0.0/1 + 128.0.0.0/1 via the tunnel's gateway) loses to popek's
    /24 by longest-prefix match; so does any broader route via a gateway. A student on the school VPN can `up`."""
    def1 = [{"dst": "0.0.0.0/1", "gateway": "10.8.0.1", "dev": "tun0"},
            {"dst": "128.0.0.0/1", "gateway": "10.8.0.1", "dev": "tun0"},
            {"dst": "10.8.0.0/24", "dev": "tun0", "prefsrc": "10.8.0.6"}]
    dataplane.check_public_routes("198.51.100.1/24", ROUTES + def1)
    dataplane.check_public_routes("198.51.100.1/24", ROUTES + [{"dst": "0.0.0.0/1", "dev": "tun0", "scope": "link"},
                                                               {"dst": "128.0.0.0/1", "dev": "tun0", "scope": "link"}])
    dataplane.check_public_routes("198.51.100.1/24", ROUTES + [{"dst": "198.51.0.0/16", "gateway": "10.8.0.1",
                                                                "dev": "tun0"}])


def test_a_narrower_or_equal_route_is_refused_even_via_a_gateway():
    for route in ({"dst": "198.51.100.0/25", "dev": "docker0", "prefsrc": "198.51.100.1"},
                  {"dst": "198.51.100.0/24", "gateway": "10.8.0.1", "dev": "tun0"},
                  {"dst": "198.51.100.7", "gateway": "10.8.0.1", "dev": "tun0"}):
        with pytest.raises(CloudError) as refused:
            dataplane.check_public_routes("198.51.100.1/24", ROUTES[:2] + [route])
        assert route["dst"] + " par " + route["dev"] in str(refused.value)
