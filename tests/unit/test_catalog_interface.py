"""`interface: internal` (OS_INTERFACE): the client uses the catalog's internal addresses, so the catalog
scenarios (C27, C35, C11) check those, not public ones this machine may not reach (a cloud whose public
addresses are behind a firewall or a NAT only the outside sees)."""
from types import SimpleNamespace as NS

import pytest

from popek.checks.cloud import catalog


def _conn(interface, region="RegionOne"):
    services = [{"type": "compute", "name": "nova", "endpoints": [
        {"interface": "public", "region_id": "RegionOne", "url": "http://203.0.113.9:8774/v2.1"},
        {"interface": "internal", "region_id": "RegionOne", "url": "http://10.0.0.5:8774/v2.1"},
        {"interface": "internal", "region_id": "Two", "url": "http://10.2.0.5:8774/v2.1"}]},
        {"type": "image", "name": "glance", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": "http://203.0.113.9:9292"}]}]
    access = NS(service_catalog=NS(catalog=services))
    config = {"interface": interface} if interface else {}
    return NS(session=NS(auth=NS(get_access=lambda session: access)), config=NS(region_name=region, config=config))


@pytest.mark.parametrize("interface, region, nova", [
    ("internal", "RegionOne", "http://10.0.0.5:8774/v2.1"),
    ("internalURL", "RegionOne", "http://10.0.0.5:8774/v2.1"),
    ("internal", "Two", "http://10.2.0.5:8774/v2.1"),
    ("public", "RegionOne", "http://203.0.113.9:8774/v2.1"),
    (None, "RegionOne", "http://203.0.113.9:8774/v2.1"),
])
def test_the_address_checked_is_the_clients_interface(interface, region, nova):
    entries = catalog.catalog(_conn(interface, region))
    assert catalog.public_url(entries[0]) == nova
    assert catalog.course_table(entries)[0]["url"] == nova


def test_a_service_without_the_clients_interface_falls_back_to_its_public_address():
    entries = catalog.catalog(_conn("internal"))
    assert catalog.public_url(entries[1]) == "http://203.0.113.9:9292"


def _region(config, region="RegionOne"):
    from openstack.config.cloud_region import CloudRegion
    return CloudRegion(config=config, region_name=region)


def _sdk_conn(config):
    conn = _conn(None)
    conn.config = _region(config)
    return conn


def test_a_services_own_interface_wins_as_openstacksdk_reads_it():
    # clouds.yaml `interface: internal` + `compute_interface: admin`: the client reaches Nova at its admin
    # address and the other services at their internal ones (CloudRegion.get_interface per service type).
    services = [{"type": "compute", "name": "nova", "endpoints": [
        {"interface": "internal", "region_id": "RegionOne", "url": "http://10.0.0.5:8774/v2.1"},
        {"interface": "admin", "region_id": "RegionOne", "url": "http://10.9.0.5:8774/v2.1"}]},
        {"type": "volumev3", "name": "cinderv3", "endpoints": [
            {"interface": "internal", "region_id": "RegionOne", "url": "http://10.0.0.5:8776/v3"},
            {"interface": "admin", "region_id": "RegionOne", "url": "http://10.9.0.5:8776/v3"}]}]
    conn = _sdk_conn({"interface": "internal", "compute_interface": "admin"})
    conn.session = NS(auth=NS(get_access=lambda session: NS(service_catalog=NS(catalog=services))))
    nova, cinder = catalog.catalog(conn)
    assert catalog.public_url(nova) == "http://10.9.0.5:8774/v2.1"
    assert catalog.public_url(cinder) == "http://10.0.0.5:8776/v3"
    # an alias of the service type counts too (volume_interface for volumev3), as openstacksdk reads it
    conn.config = _region({"interface": "internal", "volume_interface": "admin"})
    assert catalog.public_url(catalog.catalog(conn)[1]) == "http://10.9.0.5:8776/v3"


def test_a_list_of_interfaces_is_tried_in_its_order():
    conn = _sdk_conn({"interface": ["internal", "public"]})
    nova, glance = catalog.catalog(conn)
    assert catalog.public_url(nova) == "http://10.0.0.5:8774/v2.1"        # internal first
    assert catalog.public_url(glance) == "http://203.0.113.9:9292"        # no internal one: public, next in the list
    assert nova["interfaces"] == ["internal", "public"]
    conn = _sdk_conn({"interface": ["adminURL", "internalURL"]})
    assert catalog.public_url(catalog.catalog(conn)[0]) == "http://10.0.0.5:8774/v2.1"
