"""Run Neutron's L3 agent without its start-up clean-up of the machine's router namespaces: the cloud
venv's Python runs `l3_guard.py NEUTRON-L3-AGENT ARG...` (dataplane.services); popek never imports it.

At its first sync the L3 agent deletes every network namespace named `qrouter-*`, `snat-*` or `fip-*` whose
id is no router of *its* Neutron server, with the interfaces in it (neutron/agent/l3/namespace_manager.py,
NamespaceManager: `list_all` takes every such namespace of the machine, `__exit__` cleans those not kept).
On a machine that also runs another Neutron (a DevStack, a lab), those are the owner's routers. Measured
here (2026-12-07, Neutron 29): an owner's `qrouter-<uuid>` namespace and its veth were gone after popek's
`down` + `up`. popek's own router namespaces are removed by its `down` (dataplane.teardown: those of its
routers, or holding an interface of its Open vSwitch), so the agent loses nothing it needs: a router of popek
deleted while the agent was stopped keeps its namespace until `down`.
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from neutron.cmd.agents import l3  # first, as the console script does (the agents' oslo.service backend)
    from neutron.agent.l3 import namespace_manager

    init = namespace_manager.NamespaceManager.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if "_clean_stale" not in vars(self):  # a Neutron that changed: say it, never fail the agent for it
            print("l3_guard: NamespaceManager has no _clean_stale any more: the start-up clean-up of other "
                  "router namespaces may run", file=sys.stderr)
        self._clean_stale = False  # the machine's other router namespaces are not this agent's to delete

    namespace_manager.NamespaceManager.__init__ = __init__
    sys.argv = argv
    return l3.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
