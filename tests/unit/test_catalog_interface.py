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
