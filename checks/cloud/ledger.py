"""The one cleanup ledger: every resource popek creates in a cloud is named with the run's prefix,
recorded *before* it is created, and deleted in reverse order, tolerating "already gone".

Recording the name before the create call matters for Ctrl-C: if the interrupt lands after the POST
left but before its answer came back, the ledger has no id yet, and cleanup finds the resource by its
name. The orphan sweep finds what an earlier run could not clean (killed hard, power loss) by the
prefix pattern `popek-<8 hex>-`, skipping the current run.

Names: `popek-<run id>-<worker>-<what>-<random>` (the shape of tempest's rand_name), e.g.
`popek-3f9a01bc-gw1-server-1804289383`. The worker part keeps pytest-xdist workers apart; what all the
workers of a run share (shared.RunShared) takes `run` instead of a worker's name.

Whether a run is alive is decided by its heartbeat (`Heartbeat`: a security group of the run whose
`updated_at` the run refreshes every HEARTBEAT_EVERY seconds); a run without one (older popek, or killed
before it made one) is judged by its youngest dated resource, and its undated resources (keypairs,
containers) are kept unless its run is known dead. Waits use openstacksdk's own vocabulary
(`openstack.utils.iterate_timeout`): a deletion still not done when the wait ends is a leftover,
reported with its id, never counted as deleted.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import random
import re
import signal
import threading
import time
import uuid
from typing import Callable, Iterable, Optional

#: Names of every resource popek creates; group 1 is the run id.
NAME_RE = re.compile(r"^popek-([0-9a-f]{8})-")

#: Orphan sweep order: what holds other things goes first (servers hold ports and volumes, routers
#: hold subnets, …). Cleanup of one run's ledger needs no such order: it is reverse creation order.
#: The sweep at the start of a run leaves alone any run with a resource younger than this (seconds): another
#: popek may be running against the same project right now (a class, a CI job, parallel sessions).
AUTO_SWEEP_MIN_AGE = 30 * 60

#: The run's heartbeat is refreshed this often (seconds); a run whose heartbeat is older than
#: AUTO_SWEEP_MIN_AGE is dead (it would have refreshed it several times).
HEARTBEAT_EVERY = 120
HEARTBEAT_WHAT = "heartbeat"
#: The oldest a live run's heartbeat can be when read (seconds): its period, plus the time a refresh takes on a
#: loaded cloud. A sweep with a smaller min_age (but not 0) would take a live run for dead and delete its resources.
LIVE_HEARTBEAT_AGE = HEARTBEAT_EVERY + 30

SWEEP_ORDER = ("server", "server_group", "floating_ip", "router", "port", "subnet", "network", "security_group",
               "keypair", "volume_backup", "volume_snapshot", "volume", "image", "container")


def new_run_id(seed: Optional[str] = None) -> str:
    """An 8-hex run id; `seed` (e.g. pytest-xdist's testrunuid) makes every worker of a run agree. A seed
    that does not start with 8 hex digits (`--testrunuid` is free text) is hashed to them."""
    head = (seed or uuid.uuid4().hex).replace("-", "")[:8].lower()
    if re.fullmatch(r"[0-9a-f]{8}", head):
        return head
    return hashlib.sha256(seed.encode()).hexdigest()[:8]


@dataclasses.dataclass
class Entry:
    """One resource: kind (see DELETERS), name (with the prefix), id once known, extra (for
    attachments and interfaces: the ids they link), done once deleted."""
    kind: str
    name: str
    id: Optional[str] = None
    extra: dict = dataclasses.field(default_factory=dict)
    done: bool = False


class Leftover(Exception):
    """A deletion asked for but not finished when the wait ended: the resource is still there."""


class ServerNotDeleted(Leftover, AssertionError):
    """A server still there when the wait for its deletion ended, with why (stuck.delete_finding): a
    scenario that deletes a server and sees it stay fails (ÉCHEC) naming what the deletion waits for, instead
    of an error without a cause; the run's cleanup counts it as any leftover."""


class RunCleanupIncomplete(AssertionError):
    """The run's shared resources (its routed network, its two servers…) could not all be deleted when the
    run ended. Raised from the run-wide ledger's teardown, which pytest attaches to whichever scenario ran
    last: a report tells it as the run's own failure, never as that scenario's verdict (a deletion refused
    by a broken cloud says nothing of the claim the last scenario checked)."""


def _service_absent(exc: BaseException) -> bool:
    """The cloud has no such service: not in its catalog, or disabled by its configuration."""
    from openstack import exceptions as sdk_exc
    return isinstance(exc, (sdk_exc.EndpointNotFound, sdk_exc.ServiceDisabledException, sdk_exc.NotSupported)) \
        or "endpoint" in str(exc).lower()


def _forbidden(exc: BaseException) -> bool:
    """HTTP 403: the cloud's policy refuses this account (a reader-only account and Swift's listing)."""
    from openstack import exceptions as sdk_exc
    return isinstance(exc, sdk_exc.ForbiddenException)


def _not_found(exc: BaseException) -> bool:
    from openstack import exceptions as sdk_exc
    return isinstance(exc, sdk_exc.NotFoundException)


def _transient(exc: BaseException) -> bool:
    """409 (still in use: a port being unbound, a volume detaching) or 5xx: worth another try."""
    from openstack import exceptions as sdk_exc

    status = getattr(exc, "status_code", None)
    return isinstance(exc, sdk_exc.ConflictException) or (isinstance(status, int) and (status == 409 or status >= 500))


def ignore_gone(fn: Callable, *args, tries: int = 10, pause: float = 2.0, **kwargs):
    """Call fn; a 404 means the resource is already gone: fine. A 409 or 5xx is
    retried `tries` times, `pause` seconds apart (the cloud is still releasing what held the resource: under
    parallel runs on 2 cores, nova may take over 10 s to release a deleted server's ports)."""
    for attempt in range(tries):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if _not_found(exc):
                return None
            if not _transient(exc) or attempt == tries - 1:
                raise
            time.sleep(pause)


# --- how to find and delete each kind (conn: openstack.connection.Connection) ---------------------

def _find(conn, kind: str, name: str) -> list[str]:
    """Ids of the resources of `kind` called `name` (for entries recorded before their id was known)."""
    return [r_id for r_id, r_name in list_named(conn, kind) if r_name == name]


def list_named(conn, kind: str) -> list[tuple[str, str]]:
    """(id, name) of every resource of `kind` visible to `conn` (name = description for floating IPs)."""
    return [(rid, name) for rid, name, _ in list_dated(conn, kind)]


def list_dated(conn, kind: str) -> list[tuple[str, str, Optional[str]]]:
    """(id, name, creation time as the API gives it, or None) of every resource of `kind`."""
    when = lambda r: getattr(r, "created_at", None)  # noqa: E731
    if kind == "server":
        return [(s.id, s.name, when(s)) for s in conn.compute.servers()]
    if kind == "volume":
        return [(v.id, v.name or "", when(v)) for v in conn.block_storage.volumes()]
    if kind == "volume_snapshot":
        return [(s.id, s.name or "", when(s)) for s in conn.block_storage.snapshots()]
    if kind == "volume_backup":
        return [(b.id, b.name or "", when(b)) for b in conn.block_storage.backups()]
    if kind == "server_group":
        return [(g.id, g.name or "", None) for g in conn.compute.server_groups()]
    if kind == "floating_ip":
        return [(f.id, f.description or "", when(f)) for f in conn.network.ips(project_id=conn.current_project_id)]
    if kind in ("router", "port", "subnet", "network", "security_group"):
        lister = {"router": conn.network.routers, "port": conn.network.ports, "subnet": conn.network.subnets,
                  "network": conn.network.networks, "security_group": conn.network.security_groups}[kind]
        return [(r.id, r.name or "", when(r)) for r in lister(project_id=conn.current_project_id)]
    if kind == "keypair":
        return [(k.name, k.name, when(k)) for k in conn.compute.keypairs()]
    if kind == "image":
        return [(i.id, i.name or "", when(i)) for i in conn.image.images(owner=conn.current_project_id)]
    if kind == "container":
        return [(c.name, c.name, None) for c in conn.object_store.containers()]
    return []  # attachments, interfaces, rules, objects: found through their parent


def age_seconds(created_at: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds since an API timestamp ('2026-11-25T11:36:59Z', '…59.000000'; UTC when naive), or None."""
    if not created_at:
        return None
    try:
        stamp = datetime.datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return (now if now is not None else time.time()) - stamp.timestamp()


def _until(done: Callable[[], bool], timeout: float, what: str, every: float = 0.5) -> None:
    """Call `done` until it returns True (a 404 counts as True), at most `timeout` seconds; else Leftover.
    openstacksdk's iterate_timeout paces the calls."""
    from openstack import exceptions as sdk_exc
    from openstack import utils as sdk_utils

    try:
        for _ in sdk_utils.iterate_timeout(timeout, what, wait=every):
            try:
                if done():
                    return
            except Exception as exc:
                if _not_found(exc):
                    return
                raise
    except sdk_exc.ResourceTimeout:
        raise Leftover(f"{what} : toujours là après {timeout:.0f} s") from None


def _wait_gone(get: Callable[[], object], timeout: float, what: str = "suppression") -> None:
    """Poll `get` until it raises NotFound (or returns None), at most `timeout` seconds; else Leftover."""
    _until(lambda: get() is None, timeout, what)


def _delete_server(conn, e: Entry, timeout: float) -> None:
    ignore_gone(conn.compute.delete_server, e.id, ignore_missing=True)
    # ports and volumes are freed only once the server is really gone
    try:
        _wait_gone(lambda: conn.compute.get_server(e.id), timeout, f"serveur {e.id} en cours de suppression")
    except Leftover:
        raise ServerNotDeleted(_still_there(conn, e, timeout)) from None


def _still_there(conn, e: Entry, waited: float) -> str:
    """Why server `e` is still there after its deletion's wait: its status and step as Nova says them, and
    what is frozen or dead inside the embedded cloud (nova-compute frozen: « deleting » forever)."""
    from popek.checks.cloud import connection, stuck

    try:
        server = conn.compute.get_server(e.id)
        status, task_state = server.status, server.task_state
    except Exception:  # the message only
        status, task_state = None, None
    try:
        trouble = connection.embedded_trouble()
    except Exception:
        trouble = []
    return stuck.delete_finding(e.name or e.id, waited, status, task_state, trouble)


def _delete_attachment(conn, e: Entry, timeout: float) -> None:
    server_id, volume_id = e.extra["server_id"], e.extra["volume_id"]
    ignore_gone(conn.compute.delete_volume_attachment, server_id, volume_id, ignore_missing=True)
    _until(lambda: conn.block_storage.get_volume(volume_id).status in ("available", "error"), timeout,
           f"volume {volume_id} en cours de détachement")


def _delete_volume(conn, e: Entry, timeout: float) -> None:
    # a volume still "in-use"/"detaching" (its server being deleted) cannot go yet: ask again a little later
    def asked() -> bool:
        try:
            conn.block_storage.delete_volume(e.id, ignore_missing=True)
            return True
        except Exception as exc:
            if _not_found(exc):
                raise           # gone already: _until counts it as done
            return False
    _until(asked, timeout, f"volume {e.id} (suppression refusée tant qu'il est attaché)", every=1)
    _wait_gone(lambda: conn.block_storage.get_volume(e.id), timeout, f"volume {e.id} en cours de suppression")


def _delete_and_wait(method: str, getter: str, what: str) -> Callable:
    """A block-storage deleter that waits for the resource to be gone (a volume cannot go while one of
    its snapshots or backups is still being deleted)."""
    def delete(conn, e: Entry, timeout: float) -> None:
        ignore_gone(getattr(conn.block_storage, method), e.id, ignore_missing=True)
        _wait_gone(lambda: getattr(conn.block_storage, getter)(e.id), timeout, f"{what} {e.id} en cours de suppression")
    return delete


def _delete_router(conn, e: Entry, timeout: float) -> None:
    try:
        router = conn.network.get_router(e.id)
    except Exception as exc:
        if _not_found(exc):
            return
        raise
    # interfaces left by an interrupted run: remove them, then the router (gateway goes with it)
    for port in conn.network.ports(device_id=router.id, device_owner="network:router_interface"):
        for ip in port.fixed_ips:
            ignore_gone(conn.network.remove_interface_from_router, router, subnet_id=ip["subnet_id"])
    ignore_gone(conn.network.delete_router, router, ignore_missing=True)


def _delete_interface(conn, e: Entry, timeout: float) -> None:
    ignore_gone(conn.network.remove_interface_from_router, e.extra["router_id"], subnet_id=e.extra["subnet_id"])


def _delete_container(conn, e: Entry, timeout: float) -> None:
    try:
        objects = list(conn.object_store.objects(e.id))
    except Exception as exc:
        if _not_found(exc):
            return
        raise
    for obj in objects:
        ignore_gone(conn.object_store.delete_object, obj, container=e.id, ignore_missing=True)
    ignore_gone(conn.object_store.delete_container, e.id, ignore_missing=True)


def _simple(method: str, proxy: str) -> Callable:
    def delete(conn, e: Entry, timeout: float) -> None:
        ignore_gone(getattr(getattr(conn, proxy), method), e.id, ignore_missing=True)
    return delete


def _delete_object(conn, e: Entry, timeout: float) -> None:
    ignore_gone(conn.object_store.delete_object, e.id, container=e.extra["container"], ignore_missing=True)


def _delete_fip_association(conn, e: Entry, timeout: float) -> None:
    ignore_gone(conn.network.update_ip, e.id, port_id=None)


def _restore_fip_port(conn, e: Entry, timeout: float) -> None:
    """Point a floating IP a scenario moved (or took off its port) back at the port it led to before
    (`extra["port_id"]`): the run's own floating IP, given back to its server."""
    ignore_gone(conn.network.update_ip, e.id, port_id=e.extra["port_id"])


def _restore_port_groups(conn, e: Entry, timeout: float) -> None:
    """Give a port back the security groups it had (`extra["groups"]`) before a scenario changed them."""
    ignore_gone(conn.network.update_port, e.id, security_group_ids=e.extra["groups"])


DELETERS: dict[str, Callable] = {
    "server": _delete_server,
    "volume_attachment": _delete_attachment,
    "volume": _delete_volume,
    "volume_snapshot": _delete_and_wait("delete_snapshot", "get_snapshot", "instantané"),
    "volume_backup": _delete_and_wait("delete_backup", "get_backup", "sauvegarde"),
    "server_group": _simple("delete_server_group", "compute"),
    "floating_ip": _simple("delete_ip", "network"),
    "floating_ip_association": _delete_fip_association,
    "floating_ip_port": _restore_fip_port,
    "port_security_groups": _restore_port_groups,
    "router": _delete_router,
    "router_interface": _delete_interface,
    "port": _simple("delete_port", "network"),
    "subnet": _simple("delete_subnet", "network"),
    "network": _simple("delete_network", "network"),
    "security_group": _simple("delete_security_group", "network"),
    "security_group_rule": _simple("delete_security_group_rule", "network"),
    "keypair": _simple("delete_keypair", "compute"),
    "image": _simple("delete_image", "image"),
    "container": _delete_container,
    "object": _delete_object,
}


@contextlib.contextmanager
def _sigint_deferred():
    """Let cleanup finish when a second Ctrl-C (or a SIGTERM: CI cancelling the job) arrives during it:
    the interrupt is re-raised after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {sig: signal.signal(sig, lambda *_: caught.append(True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


def terminate_like_ctrl_c() -> bool:
    """Make SIGTERM (CI cancelling a job, `kill`) raise KeyboardInterrupt in the main thread, so that
    cleanup runs as it does for Ctrl-C. Only when SIGTERM still has its default action (a program that
    chose its own handler keeps it); returns True when installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)
    return True


class Ledger:
    """Resources created by one run (or one scenario) in one cloud.

    conn: the Connection that creates and deletes them; prefix: `popek-<run id>-<worker>`;
    log: called with one line per deletion problem (default: ignore); timeout: seconds to wait for a
    server, an attachment or a volume to be gone."""

    def __init__(self, conn, prefix: str, log: Callable[[str], None] = lambda s: None, timeout: float = 60.0):
        if not NAME_RE.match(prefix + "-"):
            raise ValueError(f"prefix {prefix!r} must look like popek-<8 hex>-…")
        self.conn, self.prefix, self.log, self.timeout = conn, prefix, log, timeout
        self.entries: list[Entry] = []
        #: called once cleanup() has undone every entry (also when some failed or an interrupt came): what
        #: must outlast the scenario's changes, e.g. its hold on the run's shared servers (shared.RunShared)
        self.finally_calls: list[Callable[[], None]] = []

    def name(self, what: str) -> str:
        """A fresh name for a resource of this run: `<prefix>-<what>-<random>`."""
        return f"{self.prefix}-{what}-{random.randint(1, 0x7FFFFFFF)}"

    def record(self, kind: str, name: str = "", id: Optional[str] = None, **extra) -> Entry:
        """Record a resource (before creating it: name only; set `.id` once known)."""
        if kind not in DELETERS:
            raise KeyError(f"unknown resource kind {kind!r}")
        entry = Entry(kind, name, id, dict(extra))
        self.entries.append(entry)
        return entry

    def create(self, kind: str, what: str, make: Callable[[str], object], id_attr: str = "id"):
        """Name a resource, record it, then `make(name)`; returns what make returned.

        If make fails after the cloud created the resource, cleanup still finds it by its name."""
        entry = self.record(kind, self.name(what))
        resource = make(entry.name)
        entry.id = getattr(resource, id_attr, None) or entry.id
        return resource

    def delete(self, resource_id: str) -> None:
        """Delete one recorded resource now (a scenario that checks deletion) and mark it done."""
        entry = next(e for e in self.entries if e.id == resource_id and not e.done)
        DELETERS[entry.kind](self.conn, entry, self.timeout)
        entry.done = True

    def _ask_servers_gone(self) -> None:
        """Ask Nova to delete every server still recorded, at once: their deletions then overlap, and
        each server's own turn below only waits for it to be gone (a second delete request of a server
        being deleted is a no-op for Nova). Whatever is newer than the newest server is gone already; an
        older server's port going early frees its floating IP and volume attachments with it."""
        for entry in self.entries:
            if entry.kind == "server" and entry.id and not entry.done:
                try:
                    self.conn.compute.delete_server(entry.id, ignore_missing=True)
                except Exception:  # its own turn retries and reports
                    pass

    def cleanup(self) -> list[str]:
        """Delete every recorded resource, newest first; returns the problems (empty when all went).

        A resource already gone counts as deleted. Runs to the end even if one deletion fails."""
        problems = []
        try:
            self._undo(problems)
        finally:
            calls, self.finally_calls = self.finally_calls, []
            for call in reversed(calls):
                call()
        return problems

    def _undo(self, problems: list[str]) -> None:
        with _sigint_deferred():
            servers_asked = False
            for entry in reversed(self.entries):
                if entry.done:
                    continue
                if entry.kind == "server" and not servers_asked:
                    servers_asked = True
                    self._ask_servers_gone()
                try:
                    try:
                        ids = [entry.id] if entry.id else (_find(self.conn, entry.kind, entry.name) if entry.name else [])
                    except Exception as exc:
                        if not _service_absent(exc):
                            raise
                        ids = []    # recorded, but its service is absent: nothing was created
                    for one in ids:
                        DELETERS[entry.kind](self.conn, dataclasses.replace(entry, id=one), self.timeout)
                    entry.done = True
                except Exception as exc:
                    problems.append(_problem(entry, exc))
                    self.log(problems[-1])


def _problem(entry: Entry, exc: BaseException) -> str:
    """One line for a resource that could not be deleted: kind, name, id, cause (a leftover stays there)."""
    ident = f"{entry.name} ({entry.id})" if entry.name and entry.id else (entry.name or entry.id)
    if isinstance(exc, Leftover):
        return f"{entry.kind} {ident}: laissée en place : {exc}"
    return f"{entry.kind} {ident}: {type(exc).__name__}: {exc}"


class Found(list):
    """orphans()'s answer: a list of Entry, and `unverified`: {kind: the refusal's words} for each kind this
    account may not list (HTTP 403): nothing is known of those, so they are never said clean."""

    def __init__(self, entries=(), unverified=None):
        super().__init__(entries)
        self.unverified = dict(unverified or {})

    def unverified_lines(self) -> list[str]:
        return [f"non vérifié : {kind} (le cloud refuse à ce compte de les lister : {why})"
                for kind, why in self.unverified.items()]


def orphans(conn, current_run: Optional[str], kinds: Iterable[str] = SWEEP_ORDER, min_age: float = 0.0,
            now: Optional[float] = None, prefix: Optional[str] = None) -> Found:
    """Resources named `popek-<run>-…` by another run than `current_run` (None: every popek run); a Found,
    whose `unverified` names the kinds the cloud refused to list (403): sweep() reports them.

    min_age: seconds; a run counts as alive (all its resources are kept) when its heartbeat (see
    Heartbeat) is younger than that; a run without a heartbeat, when any of its dated resources is younger
    than that, or when it has only undated resources (keypairs, containers: nothing says it is dead).
    min_age=0 takes every other run. prefix: only names starting with `prefix-` (a worker's own, at exit;
    then current_run is not skipped)."""
    found, youngest, dated, heartbeat_ids, unverified = [], {}, set(), set(), {}
    for kind in kinds:
        try:
            listing = list_dated(conn, kind)
        except Exception as exc:
            if _service_absent(exc):
                continue  # this cloud has no such service (or its configuration disables it)
            if _forbidden(exc):     # Swift to a reader (it made none), or a policy/fault refusing a member
                unverified[kind] = (getattr(exc, "details", None) or "HTTP 403").strip()[:160] or "HTTP 403"
                continue
            raise
        for r_id, r_name, created in listing:
            match = NAME_RE.match(r_name or "")
            if not match or (prefix is None and match.group(1) == current_run):
                continue
            if prefix is not None and not r_name.startswith(prefix + "-"):
                continue
            run = match.group(1)
            found.append(Entry(kind, r_name, r_id))
            age = age_seconds(created, now)
            if kind == "security_group" and _is_heartbeat(r_name):
                heartbeat_ids.add(r_id)
            if age is not None:
                dated.add(run)
                youngest[run] = min(age, youngest.get(run, age))
    if prefix is not None or min_age <= 0:
        return Found(found, unverified)
    runs = {NAME_RE.match(e.name).group(1) for e in found}
    beats = heartbeat_ages(conn, now) if heartbeat_ids else {}
    alive = {run for run in runs
             if (beats[run] < min_age if run in beats else run not in dated or youngest[run] < min_age)}
    return Found([e for e in found if NAME_RE.match(e.name).group(1) not in alive], unverified)


def _is_heartbeat(name: str) -> bool:
    return name.split("-")[3:4] == [HEARTBEAT_WHAT]


def heartbeat_ages(conn, now: Optional[float] = None) -> dict[str, float]:
    """{run id: seconds since its freshest heartbeat was refreshed (Neutron's updated_at)}."""
    ages: dict[str, float] = {}
    for group in conn.network.security_groups(project_id=conn.current_project_id):
        match = NAME_RE.match(group.name or "")
        if match and _is_heartbeat(group.name):
            age = age_seconds(getattr(group, "updated_at", None) or getattr(group, "created_at", None), now)
            if age is not None:
                ages[match.group(1)] = min(age, ages.get(match.group(1), age))
    return ages


class Heartbeat:
    """A run's sign of life: a security group `<prefix>-heartbeat-<n>` made once, whose description (and
    so Neutron's `updated_at`) is rewritten every `every` seconds by a daemon thread until stop().

    ledger: the run's ledger (the group is recorded there, so it goes with the run); every: seconds."""

    def __init__(self, ledger: "Ledger", every: float = HEARTBEAT_EVERY):
        self.ledger, self.every = ledger, every
        self.group = ledger.create("security_group", HEARTBEAT_WHAT, lambda name: ledger.conn.network.create_security_group(
            name=name, description=self._stamp()))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="popek-heartbeat", daemon=True)
        self._thread.start()

    @staticmethod
    def _stamp() -> str:
        return "popek run heartbeat " + datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(Exception):   # a missed beat is not fatal: the next one tries again
                self.ledger.conn.network.update_security_group(self.group, description=self._stamp())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def sweep(conn, current_run: Optional[str], dry_run: bool = False, log: Callable[[str], None] = lambda s: None,
          timeout: float = 60.0, min_age: float = 0.0, prefix: Optional[str] = None,
          read_only: bool = False) -> tuple[list[Entry], list[str]]:
    """Delete the orphans of earlier runs (see orphans(), min_age and prefix included); returns
    (found, problems): a resource whose deletion failed or timed out is in problems (with its id), and so
    is each kind the cloud refused to list (« non vérifié : … »), unless `read_only` (the account's roles
    are all read-only, probe.read_only: it could make none, e.g. Swift's 403 to a reader).

    dry_run: only list them. Order: SWEEP_ORDER, so that servers free their ports and volumes first."""
    found = orphans(conn, current_run, min_age=min_age, prefix=prefix)
    problems = [] if read_only else found.unverified_lines()
    if dry_run:
        return found, problems
    with _sigint_deferred():
        for entry in found:
            try:
                DELETERS[entry.kind](conn, entry, timeout)
                entry.done = True
            except Exception as exc:
                problems.append(_problem(entry, exc))
                log(problems[-1])
    return found, problems
