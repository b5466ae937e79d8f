"""dataplane.resolve_within: the registries' addresses `up` keeps off the public network, resolved side by side within a
bound, so that a DNS server the host cannot reach (a full-tunnel VPN whose tunnel is down) no longer adds 2 x 5 s per
name to every dataplane `up` (30.1 s measured for three names)."""
import threading
import time

from popek.checks.localcloud import dataplane


def test_names_resolve_side_by_side_and_a_hanging_one_is_left_out_at_the_bound():
    release = threading.Event()

    def resolve(host):
        if host == "dead.example":
            release.wait(10)            # as glibc behind a dead tunnel: no answer for 10 s
            raise OSError("Temporary failure in name resolution")
        if host == "none.example":
            raise OSError("Name or service not known")
        time.sleep(0.1)
        return {"pypi.org": "151.101.0.223", "deb.debian.org": "151.101.2.132"}[host]

    t0 = time.monotonic()
    got = dataplane.resolve_within(["pypi.org", "dead.example", "none.example", "deb.debian.org"], resolve, 0.5)
    took = time.monotonic() - t0
    release.set()
    assert got == {"pypi.org": "151.101.0.223", "deb.debian.org": "151.101.2.132"}
    assert 0.45 <= took < 1.5, took     # the bound, not the hanging name's 10 s


def test_every_name_answering_at_once_is_kept_in_the_order_given():
    got = dataplane.resolve_within(["b", "a"], lambda h: {"a": "192.0.2.1", "b": "192.0.2.2"}[h], 5)
    assert list(got.items()) == [("b", "192.0.2.2"), ("a", "192.0.2.1")]


def test_the_bound_is_a_few_seconds():
    assert 1 <= dataplane.RESOLVE_WAIT <= 5
