"""Devstack-style catalogs: every API behind one web server under a path prefix (`http://host/compute/v2.1`,
`http://host/object-store/v1/AUTH_…`). The version document is looked for under the prefix, never at the
server's root, which belongs to no API there (live 2026-12-07, a region behind a prefix proxy)."""
import pytest

from popek.checks.cloud import catalog

P = "afacd12f35914e1e99d47b6931eff9f1"


@pytest.mark.parametrize("stype, url, first", [
    ("object-store", f"http://h/object-store/v1/AUTH_{P}", "http://h/object-store/info"),
    ("object-store", f"http://h:8080/v1/AUTH_{P}", "http://h:8080/info"),
    ("object-store", "http://h/swift", "http://h/swift/info"),
    ("compute", "http://h/compute/v2.1", "http://h/compute/v2.1"),
    ("volumev3", f"http://h/volume/v3/{P}", "http://h/volume/v3"),
    ("image", "http://h/image", "http://h/image"),
    ("network", "http://h/networking/", "http://h/networking"),
])
def test_the_version_document_is_looked_for_under_the_prefix(stype, url, first):
    urls = catalog.version_urls(stype, url)
    assert urls[0] == first
    assert all(u.startswith(first.rsplit("/", 1)[0]) for u in urls), urls
