"""Neutron's quotas seen before and through Nova (mission item 3, a tight classroom project):
- Nova's refusal « Maximum number of ports exceeded » (HTTP 403, PortLimitExceeded: Neutron's port quota
  full, no numbers in it) is IGNORÉ with Neutron's limit and use only when its quota details confirm it;
- room() reads Neutron's quota details once for what a scenario makes there (networks, subnets, routers,
  ports) and skips up front with the numbers; the run's routed network is refused before anything is made;
- the course command's refusal through the `openstack` client (C37's CLI path), in both error formats.
Measured live 2026-12-07 (hX, fresh popek-hX project): port quota 1 -> C21 « server create refusé par Nova
(HTTP 403) : Maximum number of ports exceeded » ÉCHEC; port quota 0 -> C37's course command ÉCHEC with
the client's « ForbiddenException: 403: Client Error for url: …/servers, Maximum number of ports exceeded ».
Fakes stand for the SDK's objects only (pure logic, no cloud)."""
from types import SimpleNamespace as NS

import pytest
from openstack import exceptions as sdk_exc

from popek.checks.cloud import client, compute, names, network, neutron_quota
from popek.steps import cloud_compute

from fakes_neutron import Ledger, QuotaDetails

PORTS = "Maximum number of ports exceeded"
CLI_PORTS = ("openstack server create --flavor small --image Debian 13 --net public popek-x-cours-1 -c id -c status "
             f"a échoué (1) : ForbiddenException: 403: Client Error for url: http://127.0.0.1:8774/v2.1/servers, {PORTS}")


def details(**quotas):
    """openstacksdk's QuotaDetails: {openstacksdk's name: {"limit", "used", "reserved"}}."""
    return NS(**{k: {"limit": v[0], "used": v[1], "reserved": 0} for k, v in quotas.items()})


class Net(QuotaDetails):
    def __init__(self, quota, externals=()):
        self.quota, self.externals, self.made = quota, list(externals), []

    def networks(self, **query):
        return iter(self.externals)

    def create_network(self, **kwargs):
        self.made.append("network")
        raise AssertionError("nothing is made when the quota has no room")


def conn(quota, **kw):
    return NS(network=Net(quota, **kw), current_project_id="p1",
              compute=NS(get_limits=lambda: NS(absolute=NS())))


def test_novas_port_refusal_is_no_room_when_neutrons_details_confirm_it():
    reason = neutron_quota.nova_port_refusal(conn(details(ports=(3, 3))), 403, PORTS)
    assert reason == ("refusé par Nova faute de port (HTTP 403) : quota port : limite 3, en usage 3, il en faut 1 "
                      f"de plus (Neutron) ; Nova : « {PORTS} » : une limite du projet, pas une panne du cloud")
    # details that show room, that cannot be read, an unlimited quota, another refusal: not a reason
    assert neutron_quota.nova_port_refusal(conn(details(ports=(10, 3))), 403, PORTS) is None
    assert neutron_quota.nova_port_refusal(conn(sdk_exc.ForbiddenException("policy")), 403, PORTS) is None
    assert neutron_quota.nova_port_refusal(conn(details(ports=(-1, 3))), 403, PORTS) is None
    assert neutron_quota.nova_port_refusal(conn(details(ports=(3, 3))), 403, "Policy doesn't allow this") is None
    assert neutron_quota.nova_port_refusal(conn(details(ports=(3, 3))), 400, PORTS) is None


def test_boot_refused_for_ports_is_no_room_else_failure():
    def with_create(quota):
        def refuse(**kwargs):
            raise sdk_exc.ForbiddenException(message=PORTS, details=PORTS, http_status=403)
        c = conn(quota)
        c.compute.create_server = refuse
        return c
    image, flavor, net = NS(id="i"), NS(id="f"), NS(id="n")
    with pytest.raises(compute.NoRoom, match="server create refusé par Nova faute de port .*quota port : limite 2, en usage 2"):
        compute.boot(with_create(details(ports=(2, 2))), Ledger(), "s", image, flavor, net)
    with pytest.raises(AssertionError, match=r"server create refusé par Nova \(HTTP 403\) : Maximum number of ports"):
        compute.boot(with_create(details(ports=(50, 2))), Ledger(), "s", image, flavor, net)


def test_a_port_refusal_whose_port_was_freed_since_is_asked_once_more():
    """hX2 live 2026-12-07 11:13 (port quota 3, -n 2 --claim C24): the dataplane probe's network filled the
    project's ports, Nova refused the pair's first server (403 « Maximum number of ports exceeded »), the probe's
    cleanup freed its port before Neutron's details were read: 2 of 3 used, not confirmed, ÉCHEC for a refusal
    that was true when Nova counted. Asked once more: the boot goes on, or its refusal is read again."""
    def with_creates(*answers):
        c = conn(details(ports=(3, 2)))
        asked = []

        def create_server(**kwargs):
            asked.append(kwargs["name"])
            answer = answers[len(asked) - 1]
            if answer == "refuse":
                raise sdk_exc.ForbiddenException(message=PORTS, details=PORTS, http_status=403)
            c.network.quota = details(ports=answer)   # what Neutron shows after this answer
            raise sdk_exc.ForbiddenException(message=PORTS, details=PORTS, http_status=403)
        c.compute.create_server = create_server
        return c, asked

    image, flavor, net = NS(id="i"), NS(id="f"), NS(id="n")
    c, asked = with_creates("refuse", "refuse")
    with pytest.raises(AssertionError, match="Maximum number of ports exceeded .deux fois"):
        compute.boot(c, Ledger(), "s", image, flavor, net)
    assert len(asked) == 2
    c, asked = with_creates("refuse", (3, 3))     # the second refusal is confirmed: the project's limit
    with pytest.raises(compute.NoRoom, match="quota port : limite 3, en usage 3"):
        compute.boot(c, Ledger(), "s", image, flavor, net)
    c = conn(details(ports=(3, 2)))
    made = []

    def create_server(**kwargs):
        made.append(kwargs["name"])
        if len(made) == 1:
            raise sdk_exc.ForbiddenException(message=PORTS, details=PORTS, http_status=403)
        return NS(id="srv", name=kwargs["name"])
    c.compute.create_server = create_server
    assert compute.boot(c, Ledger(), "s", image, flavor, net, wait=False).id == "srv" and len(made) == 2


@pytest.mark.parametrize("text", [
    CLI_PORTS,
    "Maximum number of ports exceeded (HTTP 403) (Request-ID: req-1)",
])
def test_the_clients_port_refusal_in_either_format(text):
    assert "quota port : limite 1, en usage 1" in compute.cli_refusal(conn(details(ports=(1, 1))), text)
    assert compute.cli_refusal(conn(details(ports=(9, 1))), text) is None


def test_the_clients_instance_quota_refusal_in_either_format():
    over = "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"
    for text in (f"ForbiddenException: 403: Client Error for url: http://h/v2.1/servers, {over}",
                 f"{over} (HTTP 403) (Request-ID: req-1)"):
        assert "quota instances : limite 1, en usage 1, demandé(s) 1" in compute.cli_refusal(conn(details()), text)
    assert compute.cli_refusal(conn(details()), "BadRequestException: 400: Client Error for url: x, Invalid flavor") is None
    assert compute.cli_refusal(conn(details()), "a échoué (1) : no status at all") is None


class Evidence:
    def figure(self, *args):
        pass

    def json(self, *args):
        pass


class RunLedger:
    def record(self, kind, name):
        return NS(name=name, id=None)

    def name(self, what):
        return f"popek-test-{what}"


def test_the_course_command_refused_for_ports_is_ignored_with_neutrons_numbers(monkeypatch):
    """C37's CLI path, end to end of the step: the client's error -> IGNORÉ with the quota."""
    def cli(cloud, args, environ):
        raise AssertionError(CLI_PORTS)
    monkeypatch.setattr(client, "openstack_cli", cli)
    monkeypatch.setattr(names, "server_create_args", lambda chosen: ["server", "create", "--net", "public"])
    c = conn(details(ports=(5, 4)))
    c.compute.find_flavor = lambda name, ignore_missing: NS(vcpus=1, ram=256)
    cloud = NS(conn=c, admin=None, admin_reason=None)
    # room() asks for one port: 5 - 4 leaves it, so the command runs, and is refused (another port came)
    _refuse_after_room(c)
    with pytest.raises(pytest.skip.Exception, match="faute de port .*quota port : limite 5, en usage 5"):
        cloud_compute.course_command(cloud, RunLedger(), Evidence(), {"flavor": "small"})
    # another refusal of the client stays ÉCHEC
    def failing(cloud, args, environ):
        raise AssertionError("a échoué : 500: Server Error")
    monkeypatch.setattr(client, "openstack_cli", failing)
    c.network.get_quota = lambda project, details=False: details_room
    with pytest.raises(AssertionError, match="500"):
        cloud_compute.course_command(cloud, RunLedger(), Evidence(), {"flavor": "small"})


def test_the_course_commands_port_refusal_freed_since_is_asked_once_more(monkeypatch):
    """C37's CLI path, compute.boot's race: the client refused for ports, Neutron's details show room when
    read (another scenario's port freed in between): the command runs once more, and a second refusal is read."""
    calls = []

    def cli(cloud, args, environ):
        calls.append(args)
        if len(calls) == 1:
            raise AssertionError(CLI_PORTS)
        return {"id": "srv", "status": "BUILD"}
    monkeypatch.setattr(client, "openstack_cli", cli)
    monkeypatch.setattr(names, "server_create_args", lambda chosen: ["server", "create", "--net", "public"])
    monkeypatch.setattr(compute, "wait_active", lambda conn, server, **kw: server)
    c = conn(details(ports=(5, 4)))
    c.compute.find_flavor = lambda name, ignore_missing: NS(vcpus=1, ram=256)
    c.compute.get_server = lambda sid: NS(id=sid, status="ACTIVE")
    cloud = NS(conn=c, admin=None, admin_reason=None)
    assert cloud_compute.course_command(cloud, RunLedger(), Evidence(), {"flavor": "small"}).id == "srv"
    assert len(calls) == 2 and calls[0] == calls[1]
    calls.clear()
    monkeypatch.setattr(client, "openstack_cli", lambda *a: calls.append(a) or (_ for _ in ()).throw(AssertionError(CLI_PORTS)))
    with pytest.raises(AssertionError, match=PORTS):
        cloud_compute.course_command(cloud, RunLedger(), Evidence(), {"flavor": "small"})
    assert len(calls) == 2


details_room = details(ports=(5, 4))


def _refuse_after_room(c):
    """Neutron's details show room when room() reads them, and none when the refusal is read (a race)."""
    reads = iter([details(ports=(5, 4)), details(ports=(5, 5))])
    c.network.get_quota = lambda project, details=False: next(reads)


def test_room_reads_neutrons_needs_up_front():
    with pytest.raises(pytest.skip.Exception, match=r"quota Neutron de ce projet .*quota port : limite 3, en usage 2, "
                                                    r"il en faut 2 de plus"):
        cloud_compute.room(conn(details(ports=(3, 2), networks=(10, 0))), neutron={"network": 1, "port": 2})
    cloud_compute.room(conn(details(ports=(4, 2))), neutron={"network": 1, "port": 2})     # room
    cloud_compute.room(conn(sdk_exc.ForbiddenException("policy")), neutron={"port": 2})   # unknown: goes on
    assert compute.network_needs(None) == {"network": 1, "subnet": 1, "port": 2}        # its DHCP port, the server's
    assert compute.network_needs(NS(id="n"), servers=2) == {"network": 0, "subnet": 0, "port": 2}


def test_the_runs_routed_network_is_refused_before_anything_is_made():
    public = NS(id="e", name="public", subnet_ids=None)
    c = conn(details(routers=(1, 1), ports=(50, 0), networks=(10, 0), subnets=(10, 0)), externals=[public])
    with pytest.raises(compute.NoRoom, match=r"réseau routé du run .*quota router : limite 1, en usage 1, il en faut 1"):
        network.routed_to_external(c, Ledger())
    with pytest.raises(compute.NoRoom, match=r"quota router"):
        network.routed_network(c, Ledger(), public)
    assert c.network.made == []


def test_the_project_network_is_never_another_runs():
    """Another run's network (popek-<8 hex>-…) is deleted by its cleanup, maybe under this boot."""
    def nets(*names):
        return NS(network=NS(networks=lambda: iter([NS(name=n, is_router_external=False, subnet_ids=["s"],
                                                       status="ACTIVE") for n in names])))
    assert compute.existing_network(nets("popek-0a1b2c3d-net-1", "private")).name == "private"
    assert compute.existing_network(nets("popek-0a1b2c3d-net-1")) is None
    assert compute.existing_network(nets("popek-classe", "réseau de l'école")).name == "popek-classe"
