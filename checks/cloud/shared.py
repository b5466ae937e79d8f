"""Resources one run shares between its scenarios, made once on first use (Tempest's class-level
`resource_setup`, per run instead of per class).

A routed network and a pair of ACTIVE servers cost a router and two boots each time a scenario makes
them; the scenarios that only *read* them (list the servers, attach a volume and detach it again, move a
floating IP between their ports, log in over SSH, read the metadata from inside) can share one set. The
pair boots with the run's keypair and in the run's SSH-only security group (`access()`), so that on a
cloud with a dataplane it is reachable through a floating IP: the first server's is the run's own
(`pair_fip()`, made on first use, then kept), since every association or removal of a floating IP costs
a `network-changed` event (nova-compute then reads the server's network again: ~8 Neutron requests).
Everything is recorded in the run's own ledger
(the run's prefix, deleted when the run ends, also after a failure or Ctrl-C); a scenario that changes
what it uses records and undoes its changes in its own ledger.

With pytest-xdist workers (`popek run -n N`), `RunShared` makes these resources once for all the workers of
a run instead of once per worker (one pair of boots, not N): whichever worker asks first makes each of them
under a lock, the others read what it made (or the error it met) from a state file; see RunShared.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from popek.checks.cloud import compute, ledger as ledger_mod, network, neutron_quota, secgroups


#: tries (FIP_PAUSE s apart) of the run's floating IP's association on a 409/5xx before this scenario fails
FIP_TRIES, FIP_PAUSE = 3, 2.0


class RereadFailed(RuntimeError):
    """Another worker made a resource, and reading it again by id failed here (a 503, a reset): this
    worker's trouble, not the maker's. Never kept as the resource's error (the next scenario reads again),
    also when met inside the making of another resource (pair() reads routed()). Also a making's failure
    of a moment (pair_fip's 409/5xx): that scenario's, not the run's."""


class NoRoomNow(compute.NoRoom, RereadFailed):
    """Neutron refused the run's floating IP for lack of quota (network.quota_refusal: its details show the
    project at its limit), maybe while another scenario holds one: that scenario is IGNORÉ with the quota,
    and the next one asks again (not kept as the run's error)."""


#: what each key of the run's shared resources is, in the messages a user reads
WHAT = {"pair": "la paire d'instances du run", "pair-boot": "la paire d'instances du run",
        "routed": "le réseau du run relié au réseau externe (réseau, sous-réseau, routeur)",
        "access": "la paire de clés et le groupe de sécurité SSH du run",
        "pair-fip": "l'IP flottante de la paire du run"}


class Unavailable(AssertionError):
    """A resource the run shares could not be made, for a cause of the cloud (not the project's quota:
    NoRoom, nor a cloud with nothing to boot: NothingToBoot, both IGNORÉ): every scenario that needs it is
    ÉCHEC (an AssertionError: pytest's and Allure's `failed`, not `broken`) with the cause as measured
    once, by the first scenario of the run that asked for it (in whichever worker), and the time of that
    measure; no scenario makes it again (a boot that failed would only fail slower). `cause` names the
    component when the making could tell it (compute.wait_active's health records, a service that stopped
    answering, the catalog's service behind a refused request)."""

    def __init__(self, key: str, cause: str, measured: str = ""):
        self.key, self.cause, self.measured = key, cause, measured
        when = f", à {measured} UTC" if measured else ""
        super().__init__(f"ressource partagée du run indisponible — {WHAT.get(key, f'« {key} »')} : {cause} "
                         f"(cause mesurée une fois pour tout le run{when}, par le premier scénario qui l'a "
                         f"demandée ; ce scénario ne la refait pas)")

    def again(self) -> "Unavailable":
        """A new exception with the same cause, for the next scenario (one instance raised by every
        scenario would pile their tracebacks up)."""
        fresh = Unavailable(self.key, self.cause, self.measured)
        fresh.__cause__ = self.__cause__
        return fresh


class MakingFailed(RuntimeError):
    """An error of popek's own while making a shared resource (a TypeError, a KeyError…: not a cause of
    the cloud, see of_the_cloud): kept for the run like the cloud's causes (never made again), but raised
    as a RuntimeError, so that every scenario that needs it is `broken` (an error of the harness, with the
    maker's traceback as its cause), never an ÉCHEC blamed on the cloud."""


#: the modules whose exceptions are the cloud's answers (or its silence): openstacksdk, keystoneauth, HTTP
CLOUD_MODULES = ("openstack", "keystoneauth1", "requests", "urllib3")


def of_the_cloud(exc: BaseException) -> bool:
    """Whether `exc`, met while making a shared resource, is a cause of the cloud: a check's own verdict
    (AssertionError: compute.boot's refusal, wait_active's ERROR with its health records), an API's error
    or silence (openstacksdk/keystoneauth/requests, CloudUnavailable, a timeout, or stopped_answering along
    its causes). Anything else (a TypeError, AttributeError, KeyError…) is popek's own bug."""
    from popek.checks.cloud.connection import CloudUnavailable, _unanswered

    if isinstance(exc, (AssertionError, CloudUnavailable, TimeoutError)):
        return True
    if type(exc).__module__.split(".")[0] in CLOUD_MODULES:
        return True
    try:
        return _unanswered(exc) is not None
    except Exception:
        return False


def cause_of(conn, exc: BaseException) -> str:
    """What made a shared resource's making fail, in one line, with its component when it can be told:
    a cloud that stopped answering (and, on the embedded cloud, the frozen or silent service behind it);
    an HTTP refusal, with the catalog's service whose address it came from; else the error's own text
    (compute.wait_active's already names the dead component from the cloud's health records)."""
    if isinstance(exc, Unavailable):
        return exc.cause
    from popek.checks.cloud import components
    from popek.checks.cloud.connection import embedded_trouble, stopped_answering
    from popek.checks.secrets import REDACT

    try:    # an API's 5xx: with what is wrong inside the embedded cloud (MariaDB refusing writes…), if anything
        said = stopped_answering(exc) or components.server_failed(exc, embedded_trouble)
    except Exception:       # a probe of the embedded cloud that failed: the error's own text then
        said = None
    if said:
        return REDACT(said)
    text = str(exc) or type(exc).__name__
    if type(exc).__module__.split(".")[0] in ("openstack", "keystoneauth1"):
        text = f"{type(exc).__name__} : {text}"
        service = _service_at(conn, getattr(exc, "url", None) or getattr(getattr(exc, "response", None), "url", None))
        if service:
            text += f" (service {service} du catalogue)"
    return REDACT(text)


def _service_at(conn, url) -> Optional[str]:
    """The catalog's service type whose endpoint `url` starts with, or None."""
    if not url or conn is None:
        return None
    try:
        catalog = conn.config.get_service_catalog().catalog
    except Exception:
        return None
    best = None
    for service in catalog or []:
        for endpoint in service.get("endpoints", []):
            base = (endpoint.get("url") or "").rstrip("/")
            if base and url.startswith(base) and (best is None or len(base) > len(best[1])):
                best = (service.get("type"), base)
    return best[0] if best else None


#: Neutron's policy files under the embedded cloud's etc/ (oslo.policy's policy_file and policy_dirs defaults,
#: beside neutron.conf): popek writes none, Neutron's defaults let a member create networks and routers
NEUTRON_POLICY = ("neutron/policy.yaml", "neutron/policy.json", "neutron/policy.d")


def policy_files(root: os.PathLike, rule: str) -> tuple[list[str], list[str]]:
    """([files that name `rule`], [the other policy files]) among Neutron's policy files of the embedded cloud
    whose state directory is `root` (NEUTRON_POLICY under etc/), as paths; unreadable ones are said so."""
    naming, others = [], []
    for place in NEUTRON_POLICY:
        path = Path(root) / "etc" / place
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
        for file in files:
            try:
                text = file.read_text(errors="replace")
            except OSError as exc:
                others.append(f"{file} (illisible : {exc.strerror})")
                continue
            (naming if rule in text else others).append(str(file))
    return naming, others


def embedded_policy_fault(refused: BaseException, root: os.PathLike) -> str:
    """The French finding of the embedded cloud's Neutron refusing the run's router or network by policy
    (`refused`: compute.Refused, with the API's words): popek writes that policy, so it is a fault, with the
    policy files that name the refused rule (or the other policy files there, or that there is none)."""
    cause = refused.__cause__      # the API's 403 (refused_by_policy raises Refused from it)
    said = ((getattr(cause, "details", None) or str(cause)) if cause is not None else str(refused)).strip()[:200]
    match = re.search(r"rule:(\w+)", said)
    rule = match.group(1) if match else "create_router"
    naming, others = policy_files(root, rule)
    if naming:
        where = f"fichier(s) de politique qui nomment {rule} : {', '.join(naming)}"
    elif others:
        where = f"aucun fichier de politique ne nomme {rule} ; fichier(s) de politique présents : {', '.join(others)}"
    else:
        where = (f"aucun fichier de politique sous {Path(root) / 'etc' / 'neutron'} (policy.yaml, policy.d/) : la "
                 "politique a changé ailleurs (le code de Neutron, son paramètre [oslo_policy])")
    return (f"la politique de Neutron du cloud embarqué refuse au projet du run {rule} (HTTP 403 : {said}) : "
            f"popek écrit cette politique, ses membres y créent réseaux et routeurs : une panne, pas un choix "
            f"du cloud ; {where}")


@dataclasses.dataclass(frozen=True)
class Routed:
    """A network of the run behind a router to the external network (floating IPs come from `external`);
    passed_over: the external networks Neutron refused the router an address on, (name, its words); why:
    why `external` (network.external_why, French), read once when the router was made."""
    external: object
    network: object
    router: object
    passed_over: tuple = ()
    why: str = ""


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

    def __init__(self, conn, ledger, admin=None, admin_reason=None, key: Optional[tuple[str, str]] = None,
                 embedded: Optional[os.PathLike] = None, avoid: Optional[Callable[[], object]] = None,
                 judge: Optional[Callable[[list], object]] = None):
        self.conn, self.ledger = conn, ledger
        # judge: (the pair's ACTIVE servers) -> probe.PairVerdict, whether their image boots (their consoles,
        # and another image booted beside them when they stay silent); its 'unbootable' verdict was remembered
        # for the run by the caller (probe.remember_unbootable), and pair() boots a new pair of another image.
        # None: no judgement (the pair as Nova made it ACTIVE). judged: the verdict's evidence, for C20;
        # judged_outcome: its outcome ('booted', 'unbootable', 'undecided', 'reason'; 'error' when the judgement
        # raised; '' when none was made): C20 counts the images as checked only for 'booted'/'unbootable'
        self.judge = judge
        self.judged: dict = {}
        self.judged_outcome = ""
        # embedded: the embedded cloud's state directory when this is popek's embedded cloud (connection.Cloud's
        # embedded_root), whose Neutron policy popek writes: a refusal by policy there is a fault, not a choice
        self.embedded = embedded
        # avoid: () -> the ids of the images the run found not booting (probe.unbootable), passed over by
        # compute.pick_image for the pair
        self.avoid = avoid or (lambda: ())
        # key: (private, public) of the run's keypair when it was made elsewhere (the xdist controller), else
        # access() makes one here
        self.key = key
        # admin: a connection that reads the cloud's health records, so that a boot stuck in BUILD names
        # the dead component at once (compute.wait_active); None with admin_reason saying why not
        self.admin, self.admin_reason = admin, admin_reason
        self._made: dict[str, tuple[object, BaseException | None]] = {}
        self._created: list = []  # the pair's servers as Nova accepted them, before any wait for ACTIVE
        # the name the run's floating IP (pair_fip) takes, recorded in the ledger before the pair's boots: it
        # is then deleted after the servers, when their ports no longer hold it (no network-changed event)
        self._fip_name: Optional[str] = None
        self._lock = threading.RLock()  # pair() makes routed() inside its own making

    def get(self, key: str, make: Callable[[], object]):
        value, error = self._fetch(key, make)
        if isinstance(error, compute.NothingToBoot):  # nothing to boot in this cloud, or no room in the
            raise type(error)(str(error)) from error  # project's quota (NoRoom): the caller skips
        if isinstance(error, Unavailable):
            raise error.again()
        if isinstance(error, MakingFailed):     # popek's own error (of_the_cloud false): broken
            fresh = MakingFailed(str(error))
            fresh.__cause__ = error.__cause__   # the maker's traceback
            raise fresh
        if error is not None:
            raise MakingFailed(f"ressource partagée du run « {key} » : {type(error).__name__} : {error}") from error
        return value

    def _fetch(self, key: str, make: Callable[[], object]) -> tuple[object, BaseException | None]:
        """(value, None) or (None, the error it met), made on the first ask."""
        with self._lock:
            if key not in self._made:
                self._made[key] = self._obtain(key, make)
            return self._made[key]

    def _obtain(self, key: str, make: Callable[[], object]) -> tuple[object, BaseException | None]:
        """(value, None) or (None, the error): `make` called here, once."""
        try:
            return make(), None
        except RereadFailed:
            raise
        except compute.NothingToBoot as exc:    # also NoRoom: IGNORÉ with its reason
            return None, exc
        except (Unavailable, MakingFailed) as exc:  # another shared resource this one is made from (pair() ->
            return None, exc            # routed()): that one's cause, as measured when it was made
        except Exception as exc:
            over = network.quota_refusal(self.conn, exc)    # Neutron's 409 for lack of quota, confirmed
            if over:
                return None, compute.NoRoom(over)
            if not of_the_cloud(exc):   # popek's own bug: kept, raised by get() as broken with its traceback
                failed = MakingFailed(f"ressource partagée du run « {key} » : erreur de popek en la faisant (pas "
                                      f"une cause du cloud) : {type(exc).__name__} : {exc}")
                failed.__cause__ = exc
                return None, failed
            unavailable = Unavailable(key, cause_of(self.conn, exc), time.strftime("%H:%M:%S", time.gmtime()))
            unavailable.__cause__ = exc     # the maker's traceback, in its own report
            return None, unavailable

    def hold(self, ledger) -> None:
        """Nothing to do in one process: its scenarios run one at a time (RunShared holds the pair across
        processes for as long as `ledger`, the scenario's, has something to undo)."""

    def close(self) -> tuple[list[str], int]:
        """([problems], number deleted) of what this object deletes itself at the end: nothing here (the
        run's ledger, given by the caller, is the caller's to clean up)."""
        return [], 0

    def routed(self) -> Routed | None:
        """The run's network behind a router to the external network, or None when the cloud has no
        external network (no floating IP can exist)."""
        def make():
            # a cloud whose policy refuses this account a router (rule:create_router; its network's
            # rule:create_network is compute.create_network's): compute.Refused, IGNORÉ; any other 403 (the
            # subnet's, the router interface's, a page no policy wrote) stays a fault. On the embedded cloud
            # popek writes Neutron's policy (its members create networks and routers): there the refusal is
            # a fault (a policy changed behind popek), ÉCHEC naming Neutron's policy (embedded_policy_fault)
            refused = None
            try:
                with compute.refused_by_policy("create_router",
                                               "un routeur vers le réseau externe (Neutron, create_router)"):
                    made = network.routed_to_external(self.conn, self.ledger)    # None: no external network
            except compute.Refused as exc:
                if not self.embedded:
                    raise
                refused = exc
            if refused is not None:     # raised here, outside the handler: a fresh error, its cause Neutron's 403
                fault = AssertionError(embedded_policy_fault(refused, self.embedded))   # (not Refused's « la
                fault.__cause__ = refused.__cause__ or refused      # politique de ce cloud » in its trace)
                raise fault
            return None if made is None else Routed(*made)
        return self.get("routed", make)

    def pick_image(self):
        """compute.pick_image for the run's servers, passing over the images the run found not booting."""
        return compute.pick_image(self.conn, avoid=self.avoid())

    def access(self) -> Access:
        """The run's keypair (a key made here, the private half kept in memory and redacted) and its
        security group that lets only SSH in."""
        def make():
            private, public = self.key or compute.ssh_keypair()
            group, _rule = secgroups.ssh_only_group(self.conn, self.ledger, "sg-ssh")
            return Access(private=private, public=public, group=group,
                          keypair=compute.create_keypair(self.conn, self.ledger, public))
        return self.get("access", make)

    def pair(self) -> list:
        """Two ACTIVE servers of the smallest bootable image and flavor, with the run's `access()`, on the
        routed network when there is one (so their ports can take floating IPs), else on the project's
        network. LookupError when the cloud has nothing to boot."""
        def make():
            made, error = self._fetch("pair-boot", self._boot_pair)
            if error is not None:       # the same error, and message, as when the boots were made here
                raise error.again() if isinstance(error, Unavailable) else error
            servers = [compute.wait_active(self.conn, s, admin=self.admin, admin_reason=self.admin_reason)
                       for s in made]
            return self._judged_pair(servers)
        return self.get("pair", make)

    def _judged_pair(self, servers: list) -> list:
        """`servers`, or a new pair of another image when `judge` finds theirs not booting (the old pair is
        deleted at once: a guest that boots nothing still spins a host's CPU under TCG). A judgement that
        fails (an API's error while reading a console) is evidence lost, never the pair's failure."""
        if self.judge is None:
            return servers
        try:
            verdict = self.judge(servers)
        except Exception as exc:    # evidence only: the scenarios' own waits still say what they meet
            self.judged = {"?": f"non jugée : {type(exc).__name__} : {str(exc)[:200]}"}
            self.judged_outcome = "error"
            return servers
        self.judged, self.judged_outcome = dict(verdict.evidence), verdict.outcome
        if not verdict.image_id:
            return servers
        for server in servers:
            with contextlib.suppress(Exception):    # the run's ledger deletes it again at the end
                self.conn.compute.delete_server(server.id, ignore_missing=True)
        for server in servers:      # gone before the new pair's quota and ports are counted
            with contextlib.suppress(Exception):
                ledger_mod._wait_gone(lambda: self.conn.compute.get_server(server.id), 60)
        with self._lock:
            self._created = []
        made = self._boot_pair()        # pick_image passes over the image now remembered (avoid)
        return [compute.wait_active(self.conn, s, admin=self.admin, admin_reason=self.admin_reason) for s in made]

    def start_pair(self) -> None:
        """Ask Nova for the pair's two servers now, without waiting for them: pair() then only waits
        for ACTIVE. An error is kept for pair() (its callers get it as if pair() had met it)."""
        self._fetch("pair-boot", self._boot_pair)

    def _boot_pair(self) -> list:
        """The pair's two servers as Nova accepted them (not waited for)."""
        image = self.pick_image()
        flavor = compute.pick_flavor(self.conn, image)
        # a project whose quota leaves no room for two more servers: IGNORÉ with the quota, before any boot
        room = compute.quota_reason(self.conn, **compute.server_needs(flavor, 2), what="la paire d'instances du run")
        if room:
            raise compute.NoRoom(room)
        try:
            routed = self.routed()
        except compute.Refused:     # no network or router of its own (a provider-network cloud): the pair on
            routed = None           # the network it may use; what needs a floating IP meets routed()'s refusal
        net = routed.network if routed else compute.project_network(self.conn, self.ledger)
        # their two ports, read once the network took its own: Nova's API counts the ports at each create only,
        # so two creates it accepted can still find none at the build (live: ERROR « Exceeded maximum number of
        # retries », PortLimitExceeded in nova-compute, with a port quota of 3)
        ports = neutron_quota.neutron_room_reason(self.conn, {"port": 2}, "la paire d'instances du run")
        if ports:
            raise compute.NoRoom(ports)
        access = self.access()
        if routed is not None and self._fip_name is None:   # recorded by name only: pair_fip() creates it
            self._fip_name = self.ledger.record("floating_ip", self.ledger.name("fip")).name  # when one needs it
        made = []
        for _ in range(2):
            made.append(compute.boot(self.conn, self.ledger, "shared", image, flavor, net, wait=False,
                                     key_name=access.keypair.name, security_groups=[access.group.name]))
            self._created.append(made[-1])
        return made

    def pair_fip(self):
        """The run's floating IP of the pair's first server: made on first use (created under the name
        recorded at the boots, then associated with the server's port), kept for the run, or None when
        the cloud has no external network. A scenario calls it while it holds the pair, and does not
        trust it: it checks that it leads to the server's port, and that SSH through it lands on that
        server (guest.run_fip_guest). A scenario that moves it gives it back (network.move)."""
        def make():
            first = self.pair()[0]
            routed = self.routed()
            if routed is None:
                return None
            name = self._fip_name
            if name is None:        # no name recorded at the boots (another popek made them): record one now
                name = self.ledger.record("floating_ip", self.ledger.name("fip")).name
            try:
                # made by a try that failed after create_ip (a transient error, not kept): that one again
                fip = next((f for f in self.conn.network.ips(description=name) if f.description == name), None) \
                    or self.conn.network.create_ip(floating_network_id=routed.external.id, description=name)
                for entry in self.ledger.entries:
                    if entry.kind == "floating_ip" and entry.name == name and entry.id is None:
                        entry.id = fip.id
                port = network.server_port(self.conn, first)
                for attempt in range(FIP_TRIES):
                    try:
                        return network.associate(self.conn, fip, port)
                    except Exception as exc:
                        if not ledger_mod._transient(exc) or attempt == FIP_TRIES - 1:
                            raise
                        time.sleep(FIP_PAUSE)
            except Exception as exc:    # a 409/5xx of a moment: this scenario's failure, not the run's
                over = network.quota_refusal(self.conn, exc)
                if over:
                    raise NoRoomNow(over) from exc
                if ledger_mod._transient(exc):
                    raise RereadFailed(f"IP flottante du run pas encore prête (erreur passagère, redemandée au "
                                       f"prochain scénario) : {type(exc).__name__} : {exc}") from exc
                raise
        return self.get("pair-fip", make)

    def listed(self, ledger=None) -> tuple[object, str | None]:
        """(a server of the run as Nova lists it, why it is not ACTIVE or None): the pair's first server,
        also when it went ERROR or stays in BUILD. What a scenario that only *lists* instances needs is a
        server Nova knows: a boot broken by a dead agent or hypervisor is not the REST API's fault, and
        must not turn those claims ÉCHEC. Raises like pair() when Nova accepted no server at all (its API
        refused or did not answer: that is the API's fault).
        When the project's quota has no room for the pair (NoRoom, kept for the run) but has room for one
        server, and `ledger` (the scenario's) is given: one server of the scenario's own, asked of Nova and
        not waited for (a listing needs Nova to know it, not to run it), deleted when the scenario ends;
        no room for one either: NoRoom with both reasons (IGNORÉ)."""
        try:
            return self.pair()[0], None
        except compute.NoRoom as refused:
            if ledger is None:
                raise
            return self._own_listed(ledger, refused), None
        except Unavailable as exc:
            with self._lock:
                created = list(self._created)
            if not created:
                raise
            return created[0], str(exc)

    def _own_listed(self, ledger, refused: compute.NoRoom):
        """One server in `ledger` for a listing scenario when the pair was refused for lack of quota."""
        image = self.pick_image()
        flavor = compute.pick_flavor(self.conn, image)
        room = compute.quota_reason(self.conn, **compute.server_needs(flavor, 1), what="l'instance de ce scénario")
        # the project's network or the run's own (its routed one), else a new one: Neutron's room for it and
        # the server's port read first, and its refusal for lack of quota is IGNORÉ too (hR F5)
        existing = compute.existing_network(self.conn, own=getattr(ledger, "prefix", None))
        room = room or network.neutron_room_reason(self.conn, compute.network_needs(existing),
                                                   "l'instance de ce scénario")
        if room:
            raise compute.NoRoom(f"{refused} ; {room}")
        try:
            with network.quota_room(self.conn):
                net = compute.project_network(self.conn, ledger, existing=existing)
        except compute.NoRoom as exc:
            raise compute.NoRoom(f"{refused} ; {exc}") from exc
        return compute.boot(self.conn, ledger, "listed", image, flavor, net, wait=False)


class RunShared(Shared):
    """Shared, for all the pytest-xdist workers of one run (one process each) instead of one worker.

    directory: a folder every worker of the run sees (made by the controller, see popek.plugin); prefix:
    `popek-<run id>-run`, the names of what is made here (no worker's own end-of-session sweep, which takes
    `popek-<run id>-<worker>`, touches them); key: (private, public), the run's SSH key, made by the
    controller and handed to each worker in memory (xdist's workerinput), never written to disk.

    - Made once: each of routed(), access(), pair() is made by the first worker that asks, under an
      exclusive lock (`making.lock`); every resource is recorded in the state file `state.json` before the
      lock is released (by name before it is created, through the ledger; a maker interrupted mid-way
      leaves its names, and the final sweep of the prefix finds what has none). The other workers wait for
      the lock, then read the ids (or the error) and fetch the resources by id.
    - A failure is made once too: the error is in the state file, and every worker's scenarios get the
      same error at once, without a boot of their own (Shared.get's semantics across processes).
    - Deleted once, by the last user: a worker that asked for anything holds a shared lock on
      `users.lock` until its session ends (close()); there it drops it and takes the lock exclusively
      without waiting: only the last user gets it, and deletes everything the state file lists, then
      sweeps the prefix. The kernel drops the locks of a process that dies (SIGKILL, a crash), so the
      survivor is then the last user. A worker that asks after that starts afresh (state file gone).
    - Exclusive use: hold(ledger) takes `pair.lock` exclusively until `ledger` (the scenario's) has undone
      everything it recorded: a scenario that gives the pair a floating IP (a fixed IP takes one only),
      changes a port's security groups or attaches a volume never overlaps with another one, in another
      worker, using the same servers. Listing them (listed()) needs no hold. A holder that did not undo its
      changes (killed, or its undoing failed) leaves `pair.held`: the next hold forgets that pair (its
      servers stay recorded for the last user) and pair() makes a new one, once for all workers."""

    STATE = "state.json"
    #: written while a scenario holds the pair, removed once its ledger has undone everything: still there
    #: at the next hold, the pair may carry the last holder's changes (killed, or its undoing failed)
    HELD = "pair.held"

    def __init__(self, conn, directory: str | os.PathLike, prefix: str, key: tuple[str, str], admin=None,
                 admin_reason=None, log: Callable[[str], None] = lambda s: None,
                 embedded: Optional[os.PathLike] = None, avoid: Optional[Callable[[], object]] = None,
                 judge: Optional[Callable[[list], object]] = None):
        super().__init__(conn, ledger_mod.Ledger(conn, prefix, log=log), admin=admin, admin_reason=admin_reason,
                         key=key, embedded=embedded, avoid=avoid, judge=judge)
        self.directory, self.prefix, self.log = Path(directory), prefix, log
        self._users: Optional[int] = None   # fd of users.lock, held shared from the first ask to close()
        self._making_depth = 0              # pair() makes routed() and access() inside its own making
        self._making_fd: Optional[int] = None
        self._saved = 0                     # how many of self.ledger.entries are in the state file
        self._hold_fd: Optional[int] = None
        self._generation = 0                # of the pair this process may keep: a left-changed pair is replaced

    # --- the files -------------------------------------------------------------------------------------
    def _open(self, name: str) -> int:
        return os.open(self.directory / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def _read(self) -> dict:
        try:
            return json.loads((self.directory / self.STATE).read_text())
        except FileNotFoundError:
            return {"made": {}, "entries": []}

    def _write(self, state: dict) -> None:
        tmp = self.directory / f"{self.STATE}.{os.getpid()}"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.directory / self.STATE)

    @contextlib.contextmanager
    def _making(self):
        """The exclusive lock under which resources are made and the state file written (re-entrant)."""
        if self._making_depth == 0:
            fd = self._open("making.lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:       # interrupted while another worker makes: no fd left open
                os.close(fd)
                raise
            self._making_fd = fd
        self._making_depth += 1
        try:
            yield
        finally:
            self._making_depth -= 1
            if self._making_depth == 0:
                os.close(self._making_fd)   # closing drops the lock
                self._making_fd = None

    def _join(self) -> None:
        if self._users is None:
            fd = self._open("users.lock")
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a last user deletes: then this one starts afresh
            self._users = fd

    def _save_entries(self, state: dict) -> None:
        state["entries"] += [dataclasses.asdict(e) for e in self.ledger.entries[self._saved:]]
        self._saved = len(self.ledger.entries)

    # --- made once ----------------------------------------------------------------------------------------
    def _obtain(self, key: str, make: Callable[[], object]) -> tuple[object, BaseException | None]:
        self._join()
        with self._making():
            record = self._read()["made"].get(key)
            if record is not None:
                return self._load(key, record)
            try:
                value, error = super()._obtain(key, make)
            except BaseException:       # an interrupt: what was recorded is the last user's to delete
                state = self._read()
                self._save_entries(state)
                self._write(state)
                raise
            state = self._read()
            self._save_entries(state)
            state["made"][key] = self._dump(key, value, error)
            self._write(state)
            return value, error

    def _dump(self, key: str, value, error: BaseException | None) -> dict:
        """What the state file keeps of a made resource: its ids, or the error."""
        if error is not None:
            record = {"error": str(error), "nothing_to_boot": isinstance(error, compute.NothingToBoot),
                      "no_room": isinstance(error, compute.NoRoom), "popek": isinstance(error, MakingFailed),
                      "refused": isinstance(error, compute.Refused)}
            if isinstance(error, Unavailable):   # its cause and when it was measured, for every worker
                record.update(unavailable={"key": error.key, "cause": error.cause, "measured": error.measured})
            if key in ("pair", "pair-boot"):    # what listed() still offers when the pair did not come up
                record["created"] = [s.id for s in self._created]
            return record
        if key == "routed":
            return {"value": None if value is None else
                    {"external": value.external.id, "network": value.network.id, "router": value.router.id,
                     "passed_over": [list(p) for p in value.passed_over], "why": value.why}}
        if key == "access":
            return {"value": {"keypair": value.keypair.name, "group": value.group.id}}
        if key in ("pair", "pair-boot"):
            return {"value": [s.id for s in value], "fip_name": self._fip_name, "judged": self.judged,
                    "judged_outcome": self.judged_outcome}
        if key == "pair-fip":
            return {"value": None if value is None else value.id}
        return {"value": value}         # plain JSON values (the unit tests' keys)

    def _load(self, key: str, record: dict) -> tuple[object, BaseException | None]:
        """(value, None) rebuilt from the ids another worker recorded, or (None, the error it met)."""
        if "error" in record:
            if key in ("pair", "pair-boot"):
                with contextlib.suppress(Exception):
                    self._created = [self.conn.compute.get_server(i) for i in record.get("created", [])]
            if record.get("unavailable"):
                return None, Unavailable(**record["unavailable"])
            kind = compute.Refused if record.get("refused") else compute.NoRoom if record.get("no_room") else \
                compute.NothingToBoot if record.get("nothing_to_boot") else \
                MakingFailed if record.get("popek") else RuntimeError
            return None, kind(record["error"])
        value = record["value"]
        try:
            if key == "routed" and value is not None:
                return Routed(external=self.conn.network.get_network(value["external"]),
                              network=self.conn.network.get_network(value["network"]),
                              router=self.conn.network.get_router(value["router"]),
                              passed_over=tuple(tuple(p) for p in value.get("passed_over", ())),
                              why=value.get("why") or ""), None
            if key == "access":
                private, public = self.key
                return Access(private=private, public=public, keypair=self.conn.compute.get_keypair(value["keypair"]),
                              group=self.conn.network.get_security_group(value["group"])), None
            if key in ("pair", "pair-boot"):
                servers = [self.conn.compute.get_server(i) for i in value]
                self._created = list(servers)
                self._fip_name = record.get("fip_name")
                if key == "pair":
                    self.judged = record.get("judged") or {}
                    self.judged_outcome = record.get("judged_outcome") or ""
                return servers, None
            if key == "pair-fip" and value is not None:
                return self.conn.network.get_ip(value), None
        except Exception as exc:    # a reader's failure (a 503, a reset) is not the maker's: not kept, asked again
            raise RereadFailed(f"ressource partagée du run « {key} » : relecture par id impossible : {exc}") from exc
        return value, None

    def start_pair(self) -> None:
        """Start the pair's boots when no other worker is making anything: the first worker of the run to
        build `shared` starts them; another one does not wait behind it (nor behind a pair() that waits for
        ACTIVE under the lock): its pair() reads what the first one made."""
        self._join()
        fd = self._open("making.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return
        self._making_fd, self._making_depth = fd, 1     # _making() inside re-enters this hold
        try:
            super().start_pair()
        finally:
            self._making_fd, self._making_depth = None, 0
            os.close(fd)        # closing drops the lock

    # --- exclusive use ----------------------------------------------------------------------------------------
    def hold(self, ledger) -> None:
        """Take the pair for this scenario alone (across workers), until `ledger` has undone its changes."""
        if self._hold_fd is not None:
            return              # this scenario holds it already (one scenario at a time per worker)
        fd = self._open("pair.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._hold_fd = fd
        ledger.finally_calls.append(lambda: self._release(clean=all(e.done for e in ledger.entries)))
        try:
            self._join()
            self._renew_if_left_changed()
            (self.directory / self.HELD).write_text(str(os.getpid()))
        except BaseException:
            self._release(clean=False)
            raise

    def _renew_if_left_changed(self) -> None:
        """When the last holder did not undo its changes (killed, or its undoing failed), the pair is not
        as made: forget it in the state (its servers stay recorded: the last user deletes them) and in
        this process, so that pair() makes a new one, once for all workers (a generation number tells the
        other workers their copy is stale)."""
        with self._making():
            state = self._read()
            if (self.directory / self.HELD).exists():
                for key in ("pair", "pair-boot", "pair-fip"):
                    state["made"].pop(key, None)
                state["generation"] = state.get("generation", 0) + 1
                self._write(state)
                self.log("popek : la paire partagée a été laissée modifiée par le scénario précédent "
                         "(interrompu, ou son nettoyage n'a pas abouti) : une nouvelle paire est démarrée")
            if state.get("generation", 0) != self._generation:
                with self._lock:
                    for key in ("pair", "pair-boot", "pair-fip"):
                        self._made.pop(key, None)
                    self._created, self._fip_name = [], None
                self._generation = state.get("generation", 0)

    def _release(self, clean: bool = True) -> None:
        """Give the pair back; `clean`: the holder's ledger undid all its changes (else the marker stays)."""
        fd, self._hold_fd = self._hold_fd, None
        if fd is not None:
            if clean:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / self.HELD).unlink()
            os.close(fd)        # closing drops the lock

    # --- deleted once, by the last user -----------------------------------------------------------------------
    def close(self) -> tuple[list[str], int]:
        """At the end of this worker's session: when it is the last user, delete what the run made here
        (every worker's records, then a sweep of the prefix); returns ([problems], number deleted)."""
        self._release(clean=False)   # still held here: that scenario's ledger did not run
        fd, self._users = self._users, None
        if fd is None:
            return [], 0
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return [], 0    # another worker still uses them: the last one deletes
            state = self._read()
            problems, deleted = self._clean([ledger_mod.Entry(**e) for e in state["entries"]])
            for name in (self.STATE, self.HELD):     # the next user starts afresh
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / name).unlink()
            return problems, deleted
        finally:
            os.close(fd)

    def _clean(self, entries: list) -> tuple[list[str], int]:
        book = ledger_mod.Ledger(self.conn, self.prefix, log=self.log)
        book.entries = entries
        problems = book.cleanup()
        if not problems:
            found, problems = ledger_mod.sweep(self.conn, self.prefix.split("-")[1], prefix=self.prefix, log=self.log)
            book.entries += found
        return problems, sum(e.done for e in book.entries)
