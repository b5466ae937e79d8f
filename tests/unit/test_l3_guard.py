"""l3_guard.py (run by the cloud venv's Python in front of Neutron's L3 agent) limits the agent's start-up
clean-up of router namespaces to those holding an interface of popek's own Open vSwitch: an owner's
`qrouter-` namespace is never deleted, a popek router's left behind (deleted while the agent was stopped)
still is. Against a stand-in of Neutron's NamespaceManager with its `__enter__`/`__exit__` contract."""
import importlib.util

from popek.checks.localcloud import dataplane

spec = importlib.util.spec_from_file_location("l3_guard", dataplane.L3_GUARD_SCRIPT)
l3_guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(l3_guard)

LINKS = {"qrouter-popek-gone": {"lo", "qr-8ad5c0d4-aa", "qg-d874fd69-3a"},  # popek's, router deleted meanwhile
         "qrouter-owner": {"lo", "qr-0000aaaa-bb"},                           # another Neutron's (a DevStack)
         "qrouter-popek-live": {"lo", "qr-1111bbbb-cc"}}                       # popek's, kept by the sync


def _manager():
    class NamespaceManager:  # neutron/agent/l3/namespace_manager.py, the part the guard relies on
        def __init__(self):
            self._clean_stale, self.cleaned = True, []

        def list_all(self):
            return set(LINKS)

        def __enter__(self):
            self._all_namespaces, self._ids_to_keep = set(), set()
            if self._clean_stale:
                self._all_namespaces = self.list_all()
            return self

        def __exit__(self, *exc):
            self.cleaned = sorted(ns for ns in self._all_namespaces if ns not in self._ids_to_keep)
            return True
    return NamespaceManager


def _sync(interfaces):
    cls = _manager()
    l3_guard.guard(cls, lambda: interfaces, links=LINKS.get)
    with cls() as m:
        m._ids_to_keep.add("qrouter-popek-live")
    return m.cleaned


def test_only_namespaces_holding_an_interface_of_popeks_ovs_are_cleaned():
    ours = {"popek-int", "popek-ex", "qr-8ad5c0d4-aa", "qg-d874fd69-3a", "qr-1111bbbb-cc"}
    assert _sync(ours) == ["qrouter-popek-gone"]  # the owner's qrouter- left alone


def test_nothing_is_cleaned_when_popeks_ovs_cannot_be_read():
    assert _sync(None) == [] and _sync(set()) == []

    def unreadable():
        raise AttributeError("no such option ovsdb_connection")
    cls = _manager()
    l3_guard.guard(cls, unreadable, links=LINKS.get)
    with cls() as m:
        pass
    assert m.cleaned == []  # and the agent's sync goes on


def test_the_link_names_of_a_namespace_are_read_without_the_veth_peer_suffix(monkeypatch):
    import subprocess
    out = ("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\\    link/loopback 00:00\n"
           "6496: qr-8ad5c0d4-aa: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc pfifo_fast\\    link/ether fa:16\n"
           "7: veth1@if8: <BROADCAST,MULTICAST,UP> mtu 1500\\    link/ether 02:00\n")
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(argv, 0, out, ""))
    assert l3_guard.links_in("qrouter-x") == {"lo", "qr-8ad5c0d4-aa", "veth1"}
