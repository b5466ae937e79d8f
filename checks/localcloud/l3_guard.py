"""Run Neutron's L3 agent with its start-up clean-up of router namespaces limited to popek's own: the cloud
venv's Python runs `l3_guard.py NEUTRON-L3-AGENT ARG...` (dataplane.services); popek never imports it.

At its first sync the L3 agent deletes every network namespace named `qrouter-*`, `snat-*` or `fip-*` whose
id is no router of *its* Neutron server, with the interfaces in it (neutron/agent/l3/namespace_manager.py,
NamespaceManager: `list_all` takes every such namespace of the machine, `__exit__` cleans those not kept).
On a machine that also runs another Neutron (a DevStack, a lab), those are the owner's routers. Measured
here (2026-12-07, Neutron 29): an owner's `qrouter-<uuid>` namespace and its veth were gone after popek's
`down` + `up`. So the namespaces that clean-up may touch are only those holding an interface of the agent's
own Open vSwitch (its `[ovs] ovsdb_connection`: the criterion of dataplane.our_namespaces): a popek router
deleted while the agent was stopped or frozen still loses its namespace, an owner's never does. When that
Open vSwitch cannot be read, nothing is cleaned (popek's `down` removes its own namespaces anyway).
"""
from __future__ import annotations

import subprocess
import sys


def own_interfaces(ovsdb: str) -> set[str] | None:
    """Names of every interface of the Open vSwitch database `ovsdb` (qr-/qg-/tap ports…), None when it
    cannot be read."""
    try:
        out = subprocess.run(["ovs-vsctl", f"--db={ovsdb}", "--timeout=10", "--bare", "--columns=name", "list",
                              "Interface"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return set(out.stdout.split()) if out.returncode == 0 else None


def links_in(namespace: str) -> set[str]:
    """Names of the links of network namespace `namespace` (empty when it cannot be read)."""
    try:
        out = subprocess.run(["ip", "-n", namespace, "-o", "link", "show"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.count(":") >= 2}


def guard(manager_class, interfaces, links=links_in) -> None:
    """Limit `manager_class` (NamespaceManager)'s start-up clean-up to the namespaces holding one of
    `interfaces()` (None: unknown, then none is cleaned); `links(ns)`: the link names of `ns`."""
    enter = manager_class.__enter__

    def __enter__(self):
        enter(self)
        found = getattr(self, "_all_namespaces", None)
        if not isinstance(found, set):  # a Neutron that changed: say it, never fail the agent for it
            print("l3_guard: NamespaceManager has no _all_namespaces any more: the start-up clean-up of other "
                  "router namespaces may run", file=sys.stderr)
            return self
        try:
            ours = interfaces() if found else set()
        except Exception as exc:  # never fail the agent's sync for the guard: then nothing is cleaned
            print(f"l3_guard: popek's Open vSwitch not read ({exc}): no start-up clean-up", file=sys.stderr)
            ours = None
        self._all_namespaces = {ns for ns in found if ours and links(ns) & ours}
        return self

    manager_class.__enter__ = __enter__


def main(argv: list[str]) -> int:
    from neutron.cmd.agents import l3  # first, as the console script does (the agents' oslo.service backend)
    from neutron.agent.l3 import namespace_manager
    from neutron.conf.agent import ovsdb_api
    from oslo_config import cfg

    ovsdb_api.register_ovsdb_api_opts()  # [ovs] ovsdb_connection, as ovs_lib registers it (identical: no error)
    guard(namespace_manager.NamespaceManager, lambda: own_interfaces(cfg.CONF.OVS.ovsdb_connection))
    sys.argv = argv
    return l3.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
