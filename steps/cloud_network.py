"""Glue for features/cloud/ip_flottante.feature -> popek.checks.cloud.network."""
import pytest
from pytest_bdd import given, then, when

from popek.checks.cloud import network
from popek.steps.cloud_common import shared_pair, uses_pair
from popek.steps.cloud_compute import room
from popek.steps.cloud_dataplane import one_more_fip


@given("un réseau relié au réseau externe par un routeur", target_fixture="routed")
def routed(shared, conn, evidence):
    # the project may have no floating IP at all (its quota 0), or no room for a network or a router
    with room(conn, floating_ips=0):
        found = shared.routed()  # one per run: scenarios only add ports to it
    if found is None:
        pytest.skip(f"pas d'IP flottante dans ce cloud : {network.no_external_reason(conn)}")
    # why that external network (a full one passed over said): read once, when the run's router was made
    why = found.why or network.external_why(conn, found.external, found.passed_over)
    evidence.figure("réseau externe (source des IP flottantes)", why)
    return found


@given("deux instances sur ce réseau", target_fixture="servers")
@uses_pair
def two_on_network(shared, ledger, routed):
    return shared_pair(shared, ledger)  # on the run's routed network, since the cloud has one


@when("je crée une IP flottante", target_fixture="fip")
def create_fip(conn, ledger, routed, evidence):
    with one_more_fip(conn):      # the run's own floating IP may take the project's last one
        fip = network.create_floating_ip(conn, ledger, routed.external)
    evidence.figure("IP flottante", fip.floating_ip_address)
    return fip


@when("je l'associe à la première instance")
def associate_first(conn, ledger, fip, servers):
    # the run's own floating IP leaves the port first (one per fixed address): put back at the end
    network.move(conn, ledger, fip, network.server_port(conn, servers[0]), put_back=False)


@then("l'IP flottante mène au port de la première instance")
def points_first(conn, fip, servers, evidence):
    target = network.fip_target(conn, fip)
    evidence.json("IP flottante → 1re instance", target)
    assert target["port_id"] == network.server_port(conn, servers[0]).id, target


@when("je la déplace vers la seconde instance")
def move_second(conn, ledger, fip, servers):
    network.move(conn, ledger, fip, network.server_port(conn, servers[1]), put_back=False)


@then("l'IP flottante mène au port de la seconde instance")
def points_second(conn, fip, servers, evidence):
    target = network.fip_target(conn, fip)
    evidence.json("IP flottante → 2de instance", target)
    port = network.server_port(conn, servers[1])
    assert target["port_id"] == port.id, target
    assert target["fixed_ip"] in [ip["ip_address"] for ip in port.fixed_ips], target


@then("son adresse n'a pas changé")
def same_address(conn, fip):
    assert network.fip_target(conn, fip)["address"] == fip.floating_ip_address
