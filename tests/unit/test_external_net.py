"""Several external networks (mission item 3, any cloud): the floating IPs come from the network the
clouds.yaml entry names (openstacksdk's `nat_source: true`, then `routes_externally: true`), else from the
first external network with an IPv4 subnet that gives floating IPs; one without subnet, IPv6 only, or whose
subnets are kept for other ports (service_types) is passed over and said; one Neutron finds full (409 « No
more IP addresses available ») gives way to the next. Measured live on 2026-12-07 (hX): a subnet-less
external network listed before `public` turned both C24 scenarios ÉCHEC/broken (400 « does not contain any
IPv4 subnet »). Fakes stand for the SDK's objects only (pure logic, no cloud)."""
import json
from types import SimpleNamespace as NS

import pytest
from openstack import exceptions as sdk_exc

from popek.checks.cloud import network
from popek.checks.cloud.shared import Routed

from fakes_neutron import Ledger

FIP = network.FIP_OWNER


def net(name, subnet_ids):
    return NS(id=f"id-{name}", name=name, subnet_ids=subnet_ids, is_router_external=True)


def subnet(sid, ip_version=4, service_types=()):
    return NS(id=sid, ip_version=ip_version, service_types=list(service_types))


class Config:
    def __init__(self, source=None, routes=()):
        self.source, self.routes = source, list(routes)

    def get_nat_source(self):
        return self.source

    def get_external_ipv4_networks(self):
        return self.routes


class Net:
    def __init__(self, externals, subnets, full=(), hidden=False, refuse=None):
        self.externals, self.subnets_, self.full, self.hidden, self.refuse = externals, subnets, set(full), hidden, refuse
        self.routers, self.made = [], []

    def networks(self, **query):
        assert query == {"is_router_external": True}
        self.reads = getattr(self, "reads", 0) + 1
        return iter(self.externals)

    def subnets(self, network_id):
        if self.hidden:
            raise sdk_exc.ForbiddenException("policy")
        return [s for s in self.subnets_ if s.id.startswith(network_id)]

    def create_network(self, name):
        self.made.append("network")
        return NS(id="n1", name=name)

    def create_subnet(self, **kwargs):
        self.made.append("subnet")
        return NS(id="s1", name=kwargs["name"])

    def get_network(self, net_id):
        return NS(id=net_id, subnet_ids=["s1"])

    def create_router(self, name, external_gateway_info):
        ext = external_gateway_info["network_id"]
        self.routers.append(ext)
        if self.refuse:
            raise self.refuse
        if ext in self.full:
            said = f"No more IP addresses available on network {ext}."
            raise sdk_exc.ConflictException(message=said, http_status=409, details=said)
        return NS(id=f"r-{ext}", name=name)

    def add_interface_to_router(self, router, subnet_id):
        self.made.append(("interface", router.id, subnet_id))


def conn(externals, subnets, config=None, **kw):
    return NS(network=Net(externals, subnets, **kw), config=config or Config(), current_project_id="p1")


PUBLIC = net("public", ["id-public-s"])
PUBLIC_SUBNETS = [subnet("id-public-s")]


@pytest.mark.parametrize("first, its_subnets, said", [
    (net("ext-vide", []), [], "aucun sous-réseau"),
    (net("ext-v6", ["id-ext-v6-s"]), [subnet("id-ext-v6-s", 6)], "aucun sous-réseau IPv4"),
    (net("ext-gw", ["id-ext-gw-s"]), [subnet("id-ext-gw-s", 4, ["network:router_gateway"])],
     "ses sous-réseaux IPv4 sont réservés à d'autres ports (service_types : network:router_gateway)"),
])
def test_an_external_network_that_gives_no_floating_ip_is_passed_over_and_said(first, its_subnets, said):
    c = conn([first, PUBLIC], its_subnets + PUBLIC_SUBNETS)
    assert network.external_network(c) is PUBLIC
    chosen, why = network.external_choice(c)
    assert chosen == [PUBLIC]
    assert why.startswith("public : le premier réseau externe dont un sous-réseau IPv4 donne des IP flottantes")
    assert f"{first.name} écarté : {said}" in why


def test_a_subnet_open_to_floating_ips_among_service_types_is_taken():
    ext = net("ext", ["id-ext-s"])
    c = conn([ext, PUBLIC], [subnet("id-ext-s", 4, ["network:router_gateway", FIP])] + PUBLIC_SUBNETS)
    assert network.external_network(c) is ext


def test_the_clouds_yaml_choice_comes_first_as_openstacksdk_reads_it():
    other = net("autre", ["id-autre-s"])
    subnets = [subnet("id-autre-s")] + PUBLIC_SUBNETS
    chosen, why = network.external_choice(conn([other, PUBLIC], subnets, Config(source="public")))
    assert chosen == [PUBLIC] and why == "public : désigné par l'entrée clouds.yaml (nat_source: true)"
    chosen, why = network.external_choice(conn([other, PUBLIC], subnets, Config(routes=[PUBLIC.id])))
    assert chosen == [PUBLIC] and "routes_externally" in why
    # a name the cloud lacks: the automatic choice, and the entry's name said
    chosen, why = network.external_choice(conn([other, PUBLIC], subnets, Config(source="ext-net")))
    assert chosen == [other, PUBLIC] and "ext-net nommé(s) par l'entrée clouds.yaml mais absent(s)" in why


def test_no_external_network_that_can_give_a_floating_ip_is_none_with_each_reason():
    c = conn([net("ext-vide", [])], [])
    assert network.external_network(c) is None
    assert network.no_external_reason(c) == "aucun réseau externe ne peut donner d'IP flottante (ext-vide écarté : aucun sous-réseau)"
    assert network.no_external_reason(conn([], [])) == "aucun réseau externe (router:external) visible de ce projet"


def test_subnets_hidden_by_a_policy_are_no_reason_to_pass_a_network_over():
    ext = net("ext", ["id-ext-s"])
    assert network.external_network(conn([ext, PUBLIC], [], hidden=True)) is ext


def test_a_full_external_network_gives_way_to_the_next_keeping_the_same_network():
    full = net("ext-plein", ["id-ext-plein-s"])
    c = conn([full, PUBLIC], [subnet("id-ext-plein-s")] + PUBLIC_SUBNETS, full={full.id})
    external, made_net, router, passed_over, _why = network.routed_to_external(c, Ledger())
    assert external is PUBLIC and router.id == "r-id-public"
    # F8: the full network is kept with Neutron's own words, for the evidence (not inferred from an order)
    assert passed_over == (("ext-plein", f"No more IP addresses available on network {full.id}."),)
    assert c.network.routers == [full.id, PUBLIC.id]
    assert c.network.made.count("network") == 1 and ("interface", "r-id-public", "s1") in c.network.made


def test_the_last_full_network_and_any_other_conflict_stay_the_clouds_answer():
    full = net("ext-plein", ["id-ext-plein-s"])
    c = conn([full], [subnet("id-ext-plein-s")], full={full.id})
    with pytest.raises(sdk_exc.ConflictException, match="No more IP addresses"):
        network.routed_to_external(c, Ledger())
    other = sdk_exc.ConflictException(message="Router already has a gateway.", http_status=409,
                                      details="Router already has a gateway.")
    c = conn([PUBLIC, net("b", ["id-b-s"])], PUBLIC_SUBNETS + [subnet("id-b-s")], refuse=other)
    with pytest.raises(sdk_exc.ConflictException, match="already has a gateway"):
        network.routed_to_external(c, Ledger())
    assert c.network.routers == [PUBLIC.id]


def test_no_external_network_makes_nothing():
    c = conn([net("ext-vide", [])], [])
    assert network.routed_to_external(c, Ledger()) is None and c.network.made == []


def test_the_evidence_says_which_network_and_why():
    full = net("ext-plein", ["id-ext-plein-s"])
    c = conn([full, PUBLIC], [subnet("id-ext-plein-s")] + PUBLIC_SUBNETS, full={full.id})
    said = f"No more IP addresses available on network {full.id}."
    assert network.external_why(c, PUBLIC, (("ext-plein", said),)) == (
        "public : ext-plein passé : Neutron a refusé une adresse au routeur du run (HTTP 409 « No more IP "
        "addresses available on network id-ext-plein. ») ; l'ordre du choix : ext-plein : le premier réseau "
        "externe dont un sous-réseau IPv4 donne des IP flottantes")
    # nothing met: not the first choice is said as read now, never guessed as « full »
    assert network.external_why(c, PUBLIC) == (
        "public : le réseau où le run a fait son routeur ; l'ordre du choix relu maintenant : ext-plein : le "
        "premier réseau externe dont un sous-réseau IPv4 donne des IP flottantes")
    assert network.external_why(c, full).startswith("ext-plein : le premier réseau externe")
    assert network.external_why(conn([PUBLIC], PUBLIC_SUBNETS), PUBLIC) == "public : le seul réseau externe"


def test_the_c24_evidence_names_the_full_network_passed_over_even_in_another_worker(tmp_path):
    """F8: routed_to_external's passed_over survives the run's state file (another xdist worker reads the
    run's routed network by id) and the step writes it into the evidence."""
    from popek.checks.cloud.shared import RunShared
    from popek.steps import cloud_network

    full = net("ext-plein", ["id-ext-plein-s"])
    c = conn([full, PUBLIC], [subnet("id-ext-plein-s")] + PUBLIC_SUBNETS, full={full.id})
    maker = RunShared(c, str(tmp_path), "popek-0a1b2c3d-run", ("private", "public"))
    made = network.routed_to_external(c, Ledger())
    c.network.get_network = lambda i: {full.id: full, PUBLIC.id: PUBLIC}.get(i, NS(id=i, name=i))
    c.network.get_router = lambda i: NS(id=i, name=i)
    record = json.loads(json.dumps(maker._dump("routed", Routed(*made), None)))
    rebuilt, error = maker._load("routed", record)
    assert error is None and rebuilt.external is PUBLIC and rebuilt.passed_over == made[3]

    figures = []
    evidence = NS(figure=lambda label, value: figures.append((label, value)))
    shared = NS(routed=lambda: rebuilt)
    assert cloud_network.routed(shared, c, evidence) is rebuilt
    assert figures[0][1].startswith("public : ext-plein passé : Neutron a refusé une adresse au routeur du run "
                                    f"(HTTP 409 « No more IP addresses available on network {full.id}. »)")


def test_the_dataplane_reason_says_why_no_external_network_is_usable(monkeypatch):
    """External networks exist but none can give a floating IP: the dataplane need says which and why (it
    read « pas de réseau externe », false on such a cloud), and says there is none when there is none."""
    from popek.checks.cloud import probe

    monkeypatch.setattr(probe, "_probe_console", lambda cloud: pytest.fail("probe instance booted"))
    cloud = NS(admin=None, conn=conn([net("ext-vide", [])], []))
    assert probe.dataplane_reason(cloud) == (
        "aucun réseau externe ne peut donner d'IP flottante (ext-vide écarté : aucun sous-réseau) : pas d'IP "
        "flottante pour joindre les instances depuis l'hôte")
    assert probe.dataplane_reason(NS(admin=None, conn=conn([], []))) == (
        "aucun réseau externe (router:external) visible de ce projet : pas d'IP flottante pour joindre les "
        "instances depuis l'hôte")


def test_the_external_networks_are_read_once_for_the_run_not_again_at_each_scenario():
    """CI got slower (hC, 2026-12-07): routed_to_external read the external networks and their subnets twice
    (external_network, then external_choice), and every scenario's `routed` step read them once more
    (external_why). Now one reading when the run's router is made; its why is kept with the run's routed
    network (across xdist workers too) and the step reads nothing."""
    from popek.steps import cloud_network

    full = net("ext-plein", ["id-ext-plein-s"])
    c = conn([full, PUBLIC], [subnet("id-ext-plein-s")] + PUBLIC_SUBNETS, full={full.id})
    made = network.routed_to_external(c, Ledger())
    assert c.network.reads == 1
    said = f"No more IP addresses available on network {full.id}."
    assert made[4] == network.external_why(c, PUBLIC, (("ext-plein", said),))   # the same words as read later
    c.network.reads = 0
    figures = []
    evidence = NS(figure=lambda label, value: figures.append((label, value)))
    for _ in range(3):   # three scenarios of the run
        assert cloud_network.routed(NS(routed=lambda: Routed(*made)), NS(), evidence).external is PUBLIC
    assert figures == [("réseau externe (source des IP flottantes)", made[4])] * 3
