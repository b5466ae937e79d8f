"""A service whose endpoints are all in another region than the client's (clouds.yaml region_name): the SDK
and the `openstack` client never call it, so C35 does not probe its address and C27/C30 do not check it as
this cloud's (hA5, 2026-12-07: before, catalog.public_url fell back to the other region's address, and
C35 failed on a region the user did not choose when that address did not answer)."""
from types import SimpleNamespace as NS

import pytest

from faults import Evidence
from popek.checks.cloud import catalog

NOVA = {"type": "compute", "name": "nova", "endpoints": [
    {"interface": "public", "region_id": "RegionOne", "url": "http://one:8774/v2.1"},
    {"interface": "public", "region_id": "Two", "url": "http://two:8774/v2.1"}]}
DESIGNATE = {"type": "dns", "name": "designate", "endpoints": [
    {"interface": "public", "region_id": "Two", "url": "http://two:9001/"}]}
SWIFT = {"type": "object-store", "name": "swift", "endpoints": [
    {"interface": "public", "region_id": "Two", "url": "http://two:8080/v1/AUTH_x"}]}


def _conn(region, services=(NOVA, DESIGNATE)):
    access = NS(service_catalog=NS(catalog=list(services)))
    return NS(session=NS(auth=NS(get_access=lambda session: access)), config=NS(region_name=region))


def test_a_service_only_in_another_region_has_no_address_for_this_client():
    nova, dns = catalog.catalog(_conn("RegionOne"))
    assert catalog.in_region(nova) and not catalog.in_region(dns)
    assert catalog.public_url(nova) == "http://one:8774/v2.1" and catalog.public_url(dns) is None
    assert len(dns["endpoints"]) == 1       # still reported as the catalog has it
    nova, dns = catalog.catalog(_conn(None))    # no region chosen: the client takes any
    assert catalog.in_region(dns) and catalog.public_url(dns) == "http://two:9001/"
    nova, dns = catalog.catalog(_conn("Two"))
    assert catalog.in_region(dns) and catalog.public_url(nova) == "http://two:8774/v2.1"


def test_c35_probes_only_the_apis_of_the_clients_region(monkeypatch):
    from steps import cloud_catalog

    probed = []
    monkeypatch.setattr(catalog, "version_answer",
                        lambda session, e: probed.append(e["type"]) or {"url": "u", "essais": [], "document": "u"})
    evidence = Evidence()
    cloud_catalog.other_apis(NS(embedded_root=None), _conn("RegionOne"), catalog.catalog(_conn("RegionOne")), evidence)
    assert probed == ["compute"]
    assert any("designate (dns) : Two" in str(v) for v in evidence.attachments.values()), evidence.attachments


def test_an_optional_service_only_in_another_region_is_ignored_with_the_region():
    from steps import cloud_catalog

    entries = catalog.catalog(_conn("RegionOne", (NOVA, SWIFT)))
    with pytest.raises(pytest.skip.Exception) as exc:
        cloud_catalog._service(entries, "object-store")
    assert "que dans la région Two, pas dans « RegionOne »" in str(exc.value)
    assert cloud_catalog._service(entries, "compute")["name"] == "nova"
