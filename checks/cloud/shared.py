"""Resources one run shares between its scenarios, made once on first use (Tempest's class-level
`resource_setup`, per run instead of per class).

A routed network and a pair of ACTIVE servers cost a router and two boots each time a scenario makes
them; the scenarios that only *read* them (list the servers, attach a volume and detach it again, move a
floating IP between their ports, log in over SSH through a floating IP of their own, read the metadata
from inside) can share one set. The pair boots with the run's keypair and in the run's SSH-only
security group (`access()`), so that on a cloud with a dataplane it is reachable once a scenario gives it
a floating IP. Everything is recorded in the run's own ledger
(the run's prefix, deleted when the run ends, also after a failure or Ctrl-C); a scenario that changes
what it uses records and undoes its changes in its own ledger.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Callable

from popek.checks.cloud import compute, network, secgroups


@dataclasses.dataclass(frozen=True)
class Routed:
    """A network of the run behind a router to the external network (floating IPs come from `external`)."""
    external: object
    network: object
    router: object


@dataclasses.dataclass(frozen=True)
class Access:
    """The run's keypair (a key made here: `private` kept in memory only, redacted; `public`; `keypair`,
    Nova's copy) and its security group `group`, which lets only SSH in."""
    private: str = dataclasses.field(repr=False)
    public: str
    keypair: object
    group: object


class Shared:
    """Lazily made, run-wide resources of one cloud. `conn`: the member connection; `ledger`: the run's
    ledger (cleaned up by whoever made it). A resource whose making failed is not tried again: every
    scenario that asks for it gets the same error at once (a boot that failed would only fail slower)."""

    def __init__(self, conn, ledger, admin=None, admin_reason=None):
        self.conn, self.ledger = conn, ledger
        # admin: a connection that reads the cloud's health records, so that a boot stuck in BUILD names
        # the dead component at once (compute.wait_active); None with admin_reason saying why not
        self.admin, self.admin_reason = admin, admin_reason
        self._made: dict[str, tuple[object, BaseException | None]] = {}
        self._created: list = []  # the pair's servers as Nova accepted them, before any wait for ACTIVE
        self._lock = threading.RLock()  # pair() makes routed() inside its own making

    def get(self, key: str, make: Callable[[], object]):
        with self._lock:
            if key not in self._made:
                try:
                    self._made[key] = (make(), None)
                except Exception as exc:
                    self._made[key] = (None, exc)
            value, error = self._made[key]
        if isinstance(error, LookupError):  # nothing to boot in this cloud: the caller skips
            raise LookupError(str(error)) from error
        if error is not None:
            raise RuntimeError(f"ressource partagée du run « {key} » indisponible : {error}") from error
        return value

    def routed(self) -> Routed | None:
        """The run's network behind a router to the external network, or None when the cloud has no
        external network (no floating IP can exist)."""
        def make():
            external = network.external_network(self.conn)
            if external is None:
                return None
            net, router = network.routed_network(self.conn, self.ledger, external)
            return Routed(external=external, network=net, router=router)
        return self.get("routed", make)

    def access(self) -> Access:
        """The run's keypair (a key made here, the private half kept in memory and redacted) and its
        security group that lets only SSH in."""
        def make():
            private, public = compute.ssh_keypair()
            group, _rule = secgroups.ssh_only_group(self.conn, self.ledger, "sg-ssh")
            return Access(private=private, public=public, group=group,
                          keypair=compute.create_keypair(self.conn, self.ledger, public))
        return self.get("access", make)

    def pair(self) -> list:
        """Two ACTIVE servers of the smallest bootable image and flavor, with the run's `access()`, on the
        routed network when there is one (so their ports can take floating IPs), else on the project's
        network. LookupError when the cloud has nothing to boot."""
        def make():
            image = compute.pick_image(self.conn)
            flavor = compute.pick_flavor(self.conn, image)
            routed = self.routed()
            net = routed.network if routed else compute.project_network(self.conn, self.ledger)
            access = self.access()
            made = []
            for _ in range(2):
                made.append(compute.boot(self.conn, self.ledger, "shared", image, flavor, net, wait=False,
                                         key_name=access.keypair.name, security_groups=[access.group.name]))
                self._created.append(made[-1])
            return [compute.wait_active(self.conn, s, admin=self.admin, admin_reason=self.admin_reason)
                    for s in made]
        return self.get("pair", make)

    def listed(self) -> tuple[object, str | None]:
        """(a server of the run as Nova lists it, why it is not ACTIVE or None): the pair's first server,
        also when it went ERROR or stays in BUILD. What a scenario that only *lists* instances needs is a
        server Nova knows: a boot broken by a dead agent or hypervisor is not the REST API's fault, and
        must not turn those claims ÉCHEC. Raises like pair() when Nova accepted no server at all (its API
        refused or did not answer: that is the API's fault)."""
        try:
            return self.pair()[0], None
        except RuntimeError as exc:
            with self._lock:
                created = list(self._created)
            if not created:
                raise
            return created[0], str(exc)
