"""On a cloud of several regions, the catalog scenarios (C27, C35, C11) check the address of the region the
client uses (clouds.yaml region_name), not the first region Keystone lists: hA, 2026-12-07, a second region
with https endpoints behind a private CA; its user's C35 probed RegionOne's http addresses instead."""
from types import SimpleNamespace as NS

from popek.checks.cloud import catalog


def _conn(region):
    services = [{"type": "compute", "name": "nova", "endpoints": [
        {"interface": "public", "region_id": "RegionOne", "url": "http://one:8774/v2.1"},
        {"interface": "internal", "region_id": "RegionOne", "url": "http://one-int:8774/v2.1"},
        {"interface": "public", "region_id": "Two", "url": "https://two:18774/v2.1"}]}]
    access = NS(service_catalog=NS(catalog=services))
    session = NS(auth=NS(get_access=lambda session: access))
    return NS(session=session, config=NS(region_name=region))


def test_the_clients_region_is_checked_first():
    assert catalog.public_url(catalog.catalog(_conn("Two"))[0]) == "https://two:18774/v2.1"
    assert catalog.public_url(catalog.catalog(_conn("RegionOne"))[0]) == "http://one:8774/v2.1"
    assert catalog.public_url(catalog.catalog(_conn(None))[0]) == "http://one:8774/v2.1"
    assert len(catalog.catalog(_conn("Two"))[0]["endpoints"]) == 3     # every endpoint still reported
