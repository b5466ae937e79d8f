"""Does this cloud have a dataplane (real guests, real traffic), or only APIs? Decided honestly:

1. with admin credentials, the hypervisor types Nova reports (`fake` = Nova's test driver: no guest runs);
2. floating IPs need an external network, and a project whose floating-IP quota is not 0;
3. as a member, what a probe instance prints on its console (Nova's fake driver returns a canned
   "FAKE CONSOLE OUTPUT"; a real guest prints its kernel's boot log): booted only when 2 leaves it open.
   A console Nova does not give (501 not implemented, 403 policy, 404 no console) is a missing capability;
   a console that answers and stays empty, or says the guest did not boot, is a broken cloud
   (BrokenDataplane: every dataplane scenario ÉCHEC with the evidence) once a second, different image
   did not boot either; if it did, the first image is named, not the dataplane (UnbootableImage).

And may this account write at all? An account whose only role is Keystone's `reader` (a teacher's audit
account) is refused every creation by the default policies of every service since their "secure RBAC"
defaults; a cloud still on the legacy defaults (`project_id:%(project_id)s`) lets it write. Asked, not
guessed: one security group is created and deleted (write_refused).
"""
from __future__ import annotations

import dataclasses
import types
from typing import Optional

FAKE_CONSOLE = "FAKE CONSOLE OUTPUT"


def hypervisor_types(admin_conn, up_only: bool = True) -> list[str]:
    """Hypervisor types Nova knows (admin only), e.g. ['QEMU'] or ['fake']; up_only: of the compute
    nodes whose service is up (a node left from an earlier configuration stays listed, down)."""
    return sorted({h.hypervisor_type for h in admin_conn.compute.hypervisors(details=True)
                   if h.hypervisor_type and (h.state == "up" or not up_only)})


def hypervisor_reason(up: list[str], known: list[str]) -> Optional[str]:
    """Why the cloud has no dataplane from the hypervisor types Nova reports: `up` those of compute nodes
    whose service is up, `known` all of them. None when guests run for real here, or would: a real
    hypervisor (QEMU, KVM…) whose nova-compute is down is a broken dataplane, not an absent one — its
    scenarios run and fail naming nova-compute from the health records (stuck.py), instead of a skip that
    would hide the fault (nova-compute killed, issue #20). A down node of the fake driver stays a reason."""
    if up:
        return "hyperviseur fake : pas de plan de données" if all(t.lower() == "fake" for t in up) else None
    if any(t.lower() != "fake" for t in known):
        return None
    if known:
        return "hyperviseur fake : pas de plan de données"
    return "aucun hyperviseur dans Nova : aucun nova-compute ne s'est jamais enregistré"


#: What a guest's console says when it did not boot: its kernel gave up, or its firmware found nothing to boot
#: (SeaBIOS's words, when it writes on the serial port).
BOOT_FAILURES = ("Kernel panic", "No working init found", "Unable to mount root fs", "No bootable device",
                 "Boot failed", "not a bootable disk", "No bootable option or device was found")


class BrokenDataplane(AssertionError):
    """The probe instance is ACTIVE, Nova's console API answers, and the guest did not boot: its console
    stayed empty, or it wrote a boot failure. A broken cloud, not a missing capability: every dataplane
    scenario fails with this finding (an AssertionError: ÉCHEC), measured once per session (needs.py)."""


#: Nova's words for ConsoleNotAvailable (nova/exception.py: « Guest does not have a console available. »), the
#: only 404 of its console-output API that means "no console": its other 404 is InstanceNotFound, and a 404 in
#: other words (a proxy's or a web server's page, an empty body: a mis-routed endpoint) is no capability.
NO_CONSOLE = "does not have a console available"


def console_refusal(exc: BaseException) -> Optional[str]:
    """Why Nova's console API gives no console at all (French), from its refusal: not implemented by the
    driver (501), refused by policy (403), no console for this guest (404 in Nova's ConsoleNotAvailable words,
    NO_CONSOLE). None for any other answer (409 InstanceNotReady: asked again; 404 of a vanished instance or
    in anyone else's words, 5xx: not a capability: the scenarios run and fail naming Nova)."""
    from openstack import exceptions as sdk_exc

    if not isinstance(exc, sdk_exc.HttpException):
        return None
    said = (getattr(exc, "details", None) or "").strip()[:160]
    status = exc.status_code
    if status == 501:
        what = "la console des instances n'est pas implémentée par ce cloud"
    elif status == 403:
        what = "Nova refuse à ce compte la console des instances"
    elif status == 404 and NO_CONSOLE in said.lower():   # Nova's own ConsoleNotAvailable, nothing else
        what = "Nova n'a pas de console pour l'instance sonde"
    else:
        return None
    return f"{what} (HTTP {status}{' : ' + said if said else ''})"


def boot_failure(log: str) -> Optional[str]:
    """The console's line that says the guest did not boot (BOOT_FAILURES), None if none does."""
    for line in log.splitlines():
        if any(word.lower() in line.lower() for word in BOOT_FAILURES):
            return line.strip()[:200]
    return None


def silent_guest_finding(server, image, flavor, waited: float, log: str, failure: Optional[str],
                         actions: str, not_ready: Optional[str] = None, role: str = "l'instance sonde") -> str:
    """The French finding of a probe guest that did not boot, with its evidence: the instance, its image,
    flavor and host as this account sees them, what its console said (or that it stayed empty, or that
    Nova kept answering 409), and Nova's record of its actions. role: what the instance is, in French."""
    host = getattr(server, "compute_host", None) or getattr(server, "hypervisor_hostname", None)
    where = f"hôte {host}" if host else f"hôte non visible de ce compte (hostId {getattr(server, 'host_id', None) or '?'})"
    what = (f"{role} {server.id} (image « {image.name} » {image.id}, gabarit {flavor.name}, {where}) "
            f"est ACTIVE")
    if failure:
        said = f"et sa console dit que l'invité n'a pas démarré : « {failure} »"
    elif not_ready:
        said = f"mais Nova répond depuis {waited:.0f} s que sa console n'est pas prête ({not_ready})"
    else:
        said = (f"et n'a rien écrit sur sa console en {waited:.0f} s alors que l'API de console répond : l'invité "
                "ne démarre pas (image qui ne démarre pas, hyperviseur qui n'exécute rien) ou son image n'écrit "
                "rien sur le port série")
    return f"plan de données en panne : {what} {said} ; actions Nova : {actions}"


def _field(item, name: str):
    """A field of an SDK resource or of a plain dict."""
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def nova_actions(conn, server) -> str:
    """Nova's instance actions of `server` with their events where this account may read them (the events
    are admin-only by default), one line: e.g. « create (Success : compute__do_build_and_run_instance) »."""
    try:
        parts = []
        for action in conn.compute.server_actions(server):
            events = []
            try:
                detail = conn.compute.get_server_action(action.request_id, server)
                events = [f"{_field(e, 'result') or '?'} : {_field(e, 'event')}" for e in (detail.events or [])]
            except Exception:  # events refused to this account: the action alone
                pass
            parts.append(f"{action.action}{' (' + ', '.join(events) + ')' if events else ''}"
                         f"{' : ' + action.message if action.message else ''}")
        return "; ".join(parts) or "aucune"
    except Exception as exc:   # the actions API refused or failed: said, not hidden
        return f"illisibles ({type(exc).__name__})"


#: Seconds between two reads of the probe's console.
CONSOLE_POLL = 3


def _watch_console(conn, server, marker: Optional[str], timeout: float) -> dict:
    """Read `server`'s console every CONSOLE_POLL s until it says something conclusive (a fake console, a boot failure,
    the image's ready marker or, without one, any output), Nova refuses it for good, or `timeout` s pass.
    Returns {'log', 'refused' (console_refusal), 'not_ready' (Nova's last 409, if it was its last answer)}."""
    from openstack import exceptions as sdk_exc

    from popek.checks.cloud.waits import poll

    seen = {"log": "", "not_ready": None, "refused": None}

    def read():
        try:
            out = conn.compute.get_server_console_output(server, length=60)
        except sdk_exc.HttpException as exc:
            seen["refused"] = console_refusal(exc)
            if seen["refused"] is None and exc.status_code != 409:
                raise
            seen["not_ready"] = (f"HTTP 409 : {(exc.details or '').strip()[:120]}"
                                 if exc.status_code == 409 else None)
            return seen
        seen["not_ready"] = None
        seen["log"] = (out or {}).get("output") or ""
        return seen

    def done(state) -> bool:
        log = state["log"]
        return bool(state["refused"]) or FAKE_CONSOLE in log or boot_failure(log) is not None \
            or (marker in log if marker else bool(log))

    poll(read, done, timeout, CONSOLE_POLL)
    return seen


class UnbootableImage(BrokenDataplane):
    """The probe's image did not boot and a different image did: the dataplane runs guests, that image does
    not. Not the dataplane's verdict: dataplane_reason keeps the finding for the run (remember_unbootable),
    every image choice of the run passes that image over (compute.pick_image's avoid, from unbootable()) and
    the claim about images (C20: « des modèles prêts à démarrer ») fails naming it. `image_id`: the image
    that did not boot."""

    def __init__(self, finding: str, image_id: str = ""):
        super().__init__(finding)
        self.image_id = image_id


#: the file, in the run's folder shared by its pytest-xdist workers (popek.plugin's popek_shared), where each
#: worker's probe writes the images it found not booting: {image id: finding}
UNBOOTABLE_FILE = "unbootable.json"


def _unbootable_file(cloud):
    from pathlib import Path

    folder = (getattr(cloud, "facts", None) or {}).get("run_folder")
    return Path(folder) / UNBOOTABLE_FILE if folder else None


def unbootable(cloud) -> dict:
    """{image id: finding} of the images this run's probe found not booting (UnbootableImage): this
    process's, and every worker's of the run (UNBOOTABLE_FILE in the run's folder, when it has one)."""
    import json

    found = {}
    path = _unbootable_file(cloud)
    if path is not None:
        try:
            found.update(json.loads(path.read_text()))
        except (OSError, ValueError):   # none written yet (or being replaced): this process's own
            pass
    found.update((getattr(cloud, "facts", None) or {}).get("unbootable", {}))
    return found


def remember_unbootable(cloud, image_id: str, finding: str) -> None:
    """Keep `finding` about `image_id` for the run: in cloud.facts, and in the run's folder for the other
    workers (read, updated and replaced under an exclusive lock: two workers' probes may finish together)."""
    import fcntl
    import json
    import os

    cloud.facts.setdefault("unbootable", {})[image_id] = finding
    path = _unbootable_file(cloud)
    if path is None:
        return
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        known[image_id] = finding
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, path)
    finally:
        os.close(fd)


def second_image(conn, first):
    """A different image to boot when `first` did not, or None: among the images compute.pick_image may take
    (active, no other run's upload, no kernel or ramdisk), neither `first` nor one with its data (same hash:
    the same upload twice proves nothing); a plain image before one a plain x86 QEMU host may not boot
    (compute.special_boot: aarch64, UEFI, ISO…), then one popek knows boots (its ready marker, a CirrOS), a disk
    image before an ISO, then the smallest."""
    from popek.checks.cloud import compute
    from popek.checks.cloud.ledger import NAME_RE

    def same_data(image) -> bool:
        return any(getattr(image, key, None) and getattr(image, key, None) == getattr(first, key, None)
                   for key in ("os_hash_value", "checksum"))

    def known(image) -> bool:
        return compute.TINY_MARKER in (image.properties or {}) or "cirros" in (image.name or "").lower()

    others = [i for i in compute.images(conn) if i.id != first.id and not same_data(i)
              and not NAME_RE.match(i.name or "")
              and (i.container_format or "bare") not in ("aki", "ari") and (i.disk_format or "raw") not in ("aki", "ari")]
    if not others:
        return None
    # an image a plain x86 QEMU host cannot boot (another architecture, UEFI, an ISO…: compute.special_boot) only
    # when nothing else is there: its failure to boot would decide nothing, or blame the dataplane
    return min(others, key=lambda i: (bool(compute.special_boot(i)), not known(i), (i.disk_format or "") == "iso",
                                      i.size or 0, i.name or ""))


def _boot_and_read(conn, ledger, image, flavor, net, timeout: float) -> tuple[str, Optional[str]]:
    """Boot a probe instance of `image` and read its console: ('booted', None) when a real guest wrote on it,
    ('reason', why) when the cloud has a fake guest or gives no console, ('silent', the finding) when the
    guest did not boot (its instance deleted then). A kernel panic alone is not conclusive: the instance is
    replaced once (see _probe_console)."""
    import time

    from popek.checks.cloud import compute, diagnosis

    marker = (image.properties or {}).get(compute.TINY_MARKER)
    first_panic = None
    for attempt in (1, 2):
        server = compute.boot(conn, ledger, "probe", image, flavor, net)
        active = time.monotonic()
        seen = _watch_console(conn, server, marker, timeout)
        log = seen["log"]
        if seen["refused"]:
            return "reason", f"plan de données impossible à établir : {seen['refused']}"
        if FAKE_CONSOLE in log:
            return "reason", "hyperviseur fake : pas de plan de données (la console de l'instance sonde est factice)"
        failure = boot_failure(log)
        if not failure and log:
            return "booted", None
        panic = diagnosis.kernel_panic(log)
        if panic and attempt == 1:
            first_panic = panic.quote()
            ledger.delete(server.id)
            continue
        current = conn.compute.get_server(server.id)
        if current.status != "ACTIVE":   # it left ACTIVE meanwhile (ERROR, deleted): not this finding
            raise AssertionError(f"l'instance sonde {server.id} est passée de ACTIVE à {current.status}")
        finding = silent_guest_finding(current, image, flavor, time.monotonic() - active, log,
                                       panic.quote() if panic else failure,
                                       nova_actions(conn, current), seen["not_ready"])
        if first_panic:
            finding += f" ; la première instance sonde avait déjà paniqué : « {first_panic} »"
        ledger.delete(server.id)   # the project's room for the next image's probe (quota of one instance)
        return "silent", finding
    raise AssertionError("unreachable")  # pragma: no cover (the loop returns or raises)


def unbootable_finding(image, other, evidence: str) -> str:
    """The French finding of `image` not booting while `other` boots on the same cloud (UnbootableImage's, and
    the run's pair's: judge_pair), with `evidence`, what was seen."""
    return (f"l'image « {image.name} » {image.id} ne démarre pas sur ce cloud, l'image « {other.name} » "
            f"{other.id} y démarre : le plan de données fonctionne, cette image non ; ce run ne la démarre "
            f"plus (ses scénarios prennent une autre image) : retirez-la du projet ou remplacez-la par une "
            f"image qui démarre (constat : {evidence})")


#: _boot_and_read's outcome, as C20's evidence says it
PROBED_OUTCOMES = {"booted": "a démarré (sa console a écrit)", "silent": "n'a pas démarré (console muette)",
                   "reason": "non lue"}


def _record_probed(cloud, image, outcome: str, said) -> None:
    """Keep in cloud.facts["probed_images"] {image id: what its probe instance showed}: C20 says which images
    the probe booted, and that none was when none was (not « aucune » image failing as if all were tried)."""
    text = f"« {image.name} » : {PROBED_OUTCOMES.get(outcome, outcome)}"
    if outcome == "reason" and said:
        text += f" ({said})"
    cloud.facts.setdefault("probed_images", {})[image.id] = text


def _probe_console(cloud, timeout: float = 90) -> Optional[str]:
    """Boot a probe instance as the member and read its console: the reason if it is a fake guest or if the
    cloud gives no console (a missing capability); BrokenDataplane if the guest did not boot (a broken
    cloud); None when a real guest wrote on its console.

    A kernel panic alone (`Kernel panic - not syncing`: a Debian guest under QEMU TCG, 2 of 64 boots, guest.py)
    is not conclusive: the probe is replaced once, as the scenarios' guests are; a second failure is.
    One image is not the dataplane (the smallest image may be anyone's upload that boots nothing): when it
    does not boot, a different one is booted (second_image) before the dataplane is blamed; if that one
    boots, the finding names the first image (UnbootableImage)."""
    from popek.checks.cloud import compute, network
    from popek.checks.cloud.ledger import Ledger

    ledger = Ledger(cloud.conn, cloud.facts["prefix"])
    try:
        # an image another worker's probe found not booting is not booted again (its finding is the run's)
        image = compute.pick_image(cloud.conn, avoid=unbootable(cloud))
        flavor = compute.pick_flavor(cloud.conn, image)
        with network.quota_room(cloud.conn):     # Neutron's quota full: compute.NoRoom (a limit, not a fault)
            net = compute.project_network(cloud.conn, ledger)
        outcome, said = _boot_and_read(cloud.conn, ledger, image, flavor, net, timeout)
        _record_probed(cloud, image, outcome, said)
        if outcome != "silent":
            return said
        other = second_image(cloud.conn, image)
        if other is None:
            raise BrokenDataplane(f"{said} ; aucune autre image à démarrer sur ce cloud pour départager l'image "
                                  "et le plan de données")
        try:
            outcome, other_said = _boot_and_read(cloud.conn, ledger, other, compute.pick_flavor(cloud.conn, other),
                                                 net, timeout)
        except Exception as exc:   # no flavor, no room, Nova's refusal for the second image: the first's finding
            raise BrokenDataplane(f"{said} ; une deuxième image, « {other.name} » {other.id}, n'a pas pu être "
                                  f"démarrée : {type(exc).__name__} : {str(exc)[:200]}") from exc
        _record_probed(cloud, other, outcome, other_said)
        evidence = said.removeprefix("plan de données en panne : ")
        if outcome == "booted":
            raise UnbootableImage(unbootable_finding(image, other, evidence), image_id=image.id)
        if outcome == "silent":
            raise BrokenDataplane(f"{said} ; une deuxième image ne démarre pas non plus : "
                                  f"{other_said.removeprefix('plan de données en panne : ')}")
        raise BrokenDataplane(f"{said} ; une deuxième image, « {other.name} » {other.id}, n'a pas pu être "
                              f"lue : {other_said}")
    finally:
        ledger.cleanup()


# --- the run's own boots (shared.Shared.pair): on a cloud reached WITH admin credentials no probe instance
# boots (the hypervisors' state answers the dataplane question), so the pair's consoles are what tells an
# image that does not boot

#: Seconds the run's pair may write nothing on its consoles after ACTIVE before a different image is booted
#: beside it. Not a verdict: a guest writes within seconds of ACTIVE under QEMU TCG (popek-tiny's pair on the
#: embedded cloud: its first console line 14 s after ACTIVE, 2026-12-07 20:02; a whole Debian boot ~45 s, a
#: cirros-like ~15 s, twice that on a loaded host); only the other image's guest, booted later on the same cloud,
#: writing its boot while the pair still shows none is conclusive (pair_outcome). Four times the measure: a
#: loaded host rarely pays the other image's boot for a slow pair.
PAIR_SILENCE = 60


def did_not_boot(log: str) -> bool:
    """A console that shows no boot: empty, or ending on a boot failure (BOOT_FAILURES: firmware with nothing to
    boot, a kernel that gave up) as its last non-empty line. A failure followed by other lines is not a console
    without a boot: SeaBIOS's « Boot failed » for one device, then a kernel booted from the next."""
    lines = [line for line in log.splitlines() if line.strip()]
    return not lines or boot_failure(lines[-1]) is not None


def pair_outcome(before: list, other: str, after: list) -> str:
    """What the run's pair's consoles say of its image (pure logic): `before`, what each of its instances had
    printed when another image was booted beside them; `other`, that image's outcome (_boot_and_read's
    'booted', 'silent', 'reason', or 'none': none could be booted); `after`, what the pair's consoles printed
    once the other image's guest had written (or not).
    'booted' when one of the pair printed a boot, before or after (a slow boot is a boot); 'unbootable' only
    when none printed a boot before nor after while the other image's guest, booted after them on the same
    cloud, printed its own; else 'undecided' (no other image, or it did not boot either: the dataplane's, which
    the scenarios' own waits name)."""
    if not before or not after:
        return "undecided"
    if not all(did_not_boot(log) for log in before) or not all(did_not_boot(log) for log in after):
        return "booted"
    return "unbootable" if other == "booted" else "undecided"


@dataclasses.dataclass
class PairVerdict:
    """judge_pair's conclusion: `outcome` (pair_outcome's, or 'reason': a console Nova does not give or a fake
    one); `evidence`, {image id: what its instances showed} for C20; `image_id` and `finding` (unbootable_finding)
    when the pair's image does not boot."""
    outcome: str
    evidence: dict
    image_id: str = ""
    finding: str = ""


def _watch_pair(conn, servers, timeout: float) -> dict:
    """Read the consoles of `servers` every CONSOLE_POLL s until one printed a boot, every one printed a boot
    failure, one is fake, Nova refuses a console for good, or `timeout` s pass (at least one read).
    Returns {'logs': {server id: its console}, 'refused': console_refusal or None}."""
    from openstack import exceptions as sdk_exc

    from popek.checks.cloud.waits import poll

    seen = {"logs": {s.id: "" for s in servers}, "refused": None}

    def read():
        for server in servers:
            try:
                out = conn.compute.get_server_console_output(server, length=60)
            except sdk_exc.HttpException as exc:    # 409: not ready yet (still nothing printed)
                seen["refused"] = console_refusal(exc)
                if seen["refused"] is None and exc.status_code != 409:
                    raise
                if seen["refused"]:
                    return seen
                continue
            seen["logs"][server.id] = (out or {}).get("output") or ""
        return seen

    def done(state) -> bool:
        logs = list(state["logs"].values())
        return bool(state["refused"]) or any(FAKE_CONSOLE in log for log in logs) \
            or not all(did_not_boot(log) for log in logs) or all(boot_failure(log) for log in logs)

    poll(read, done, timeout, CONSOLE_POLL, final_look=True)
    return seen


def judge_pair(conn, servers, prefix: str, silence: float = PAIR_SILENCE, timeout: float = 90) -> PairVerdict:
    """Whether the image of the run's pair `servers` (ACTIVE just now) boots, from their consoles: as soon as
    one prints a boot, 'booted'. When none has after `silence` s, a different image (second_image) is booted on
    the pair's network (named with `prefix`, deleted before returning) and its console read (_boot_and_read,
    `timeout`); then the pair's consoles are read again: pair_outcome decides. 'unbootable' names the image,
    with the evidence (the pair's silence, the other image's boot): the caller remembers it for the run
    (remember_unbootable) and boots its pair of another image."""
    import time

    from popek.checks.cloud import compute, network
    from popek.checks.cloud.ledger import Ledger

    start = time.monotonic()
    first = servers[0]
    image = conn.image.get_image((first.image or {})["id"])
    label = f"« {image.name} »"
    seen = _watch_pair(conn, servers, silence)
    before = list(seen["logs"].values())
    if seen["refused"]:
        return PairVerdict("reason", {image.id: f"{label} : console de la paire du run non lue ({seen['refused']})"})
    if any(FAKE_CONSOLE in log for log in before):
        return PairVerdict("reason", {image.id: f"{label} : console de la paire du run factice (hyperviseur fake)"})
    if not all(did_not_boot(log) for log in before):
        return PairVerdict("booted", {image.id: f"{label} : a démarré (la console de la paire du run a écrit en "
                                                f"{time.monotonic() - start:.0f} s)"})
    silent = f"{label} : la paire du run n'a rien démarré en {time.monotonic() - start:.0f} s (console muette)"
    other = second_image(conn, image)
    if other is None:
        return PairVerdict("undecided", {image.id: f"{silent} ; aucune autre image sur ce cloud pour départager "
                                                   "l'image et le plan de données"})
    ledger = Ledger(conn, prefix)
    try:
        try:
            net = conn.network.get_network(network.server_port(conn, first).network_id)
            other_start = time.monotonic()
            other_outcome, other_said = _boot_and_read(conn, ledger, other, compute.pick_flavor(conn, other), net,
                                                       timeout)
            other_took = time.monotonic() - other_start
        except Exception as exc:    # no room, no flavor, Nova's refusal: nothing decided, the scenarios say
            return PairVerdict("undecided", {image.id: silent, other.id: (
                f"« {other.name} » : n'a pas pu être démarrée pour départager : {type(exc).__name__} : "
                f"{str(exc)[:200]}")})
    finally:
        ledger.cleanup()
    # the pair, silent so far, watched again (not read once): under load a slow pair's first line may come just
    # after the other image's, whose kernel writes sooner (popek-tiny boots `quiet`, Debian does not). Long only
    # when the pair is really silent: half the silence, or twice the other's boot (create -> console), at most
    # `timeout`; not at all when the other did not boot (nothing to compare with)
    rewatch = max(silence / 2, min(2 * other_took, timeout)) if other_outcome == "booted" else 0
    again = _watch_pair(conn, servers, rewatch)
    after = list(again["logs"].values())
    evidence = {image.id: silent, other.id: f"« {other.name} » : {PROBED_OUTCOMES.get(other_outcome, other_outcome)}"
                + (f" ({other_said})" if other_outcome != "booted" and other_said else "")}
    outcome = pair_outcome(before, other_outcome, [] if again["refused"] else after)
    if outcome == "booted":
        evidence[image.id] = (f"{label} : a démarré lentement (la console de la paire du run a écrit après "
                              f"{time.monotonic() - start:.0f} s, pendant le démarrage de « {other.name} »)")
        return PairVerdict("booted", evidence)
    current = [conn.compute.get_server(s.id) for s in servers]
    if outcome != "unbootable" or any(s.status != "ACTIVE" for s in current):   # left ACTIVE: not this finding
        return PairVerdict("undecided", evidence)
    waited = time.monotonic() - start
    flavor = (getattr(current[0], "flavor", None) or {})
    flavor = types.SimpleNamespace(name=flavor.get("original_name") or flavor.get("name") or flavor.get("id") or "?")
    log = after[0]
    said = silent_guest_finding(current[0], image, flavor, waited, log, boot_failure(log),
                                nova_actions(conn, current[0]), role="l'instance de la paire du run")
    said = said.removeprefix("plan de données en panne : ")
    said += (f" ; les {len(servers)} instances de la paire du run n'ont écrit aucun démarrage, l'instance de l'image "
             f"« {other.name} » démarrée après elles sur ce cloud a écrit le sien")
    evidence[image.id] = f"{label} : n'a pas démarré (console muette {waited:.0f} s, une autre image démarre)"
    return PairVerdict("unbootable", evidence, image_id=image.id, finding=unbootable_finding(image, other, said))


def dataplane_reason(cloud) -> Optional[str]:
    """None when guests really run and floating IPs exist; else the French reason."""
    from popek.checks.cloud import network

    if cloud.admin is not None:
        reason = hypervisor_reason(hypervisor_types(cloud.admin), hypervisor_types(cloud.admin, up_only=False))
        if reason:
            return reason
    if network.external_network(cloud.conn) is None:   # none at all, or none that can give floating IPs: say which
        return f"{network.no_external_reason(cloud.conn)} : pas d'IP flottante pour joindre les instances depuis l'hôte"
    quota = network.floating_ip_quota_reason(cloud.conn)
    if quota:
        return f"{quota} : pas d'IP flottante pour joindre les instances depuis l'hôte"
    if cloud.admin is None:     # the API answers first; a probe instance only when they leave the question open
        try:
            return _probe_console(cloud)
        except UnbootableImage as exc:  # the dataplane runs guests (the second image booted): that image is the
            remember_unbootable(cloud, exc.image_id, str(exc))  # finding (C20's ÉCHEC), passed over by the run
            return None
    return None


#: Keystone's read-only default role (admin ⊃ member ⊃ reader), and the observer roles some services define:
#: an account holding only these may be refused every write.
READ_ONLY_ROLES = frozenset({"reader", "observer", "load-balancer_observer", "load-balancer_global_observer"})


def read_only(roles) -> bool:
    """True when the token's role names are all read-only ones (and there is at least one)."""
    names = {str(r).lower() for r in roles or []}
    return bool(names) and names <= READ_ONLY_ROLES


def refusal_text(exc: BaseException) -> Optional[str]:
    """The policy's words of an HTTP 403 (openstacksdk's ForbiddenException), None for anything else."""
    from openstack import exceptions as sdk_exc

    if not isinstance(exc, sdk_exc.ForbiddenException):
        return None
    words = (getattr(exc, "details", None) or "").strip()
    return f"HTTP 403{' : ' + words[:160] if words else ''}"


def write_refused(cloud) -> Optional[str]:
    """Why this account cannot create anything in its project (French), None when it can or may.

    Only asked of an account whose roles are all read-only (read_only()); any other account is let run
    (a refusal is then that scenario's finding). The question: creating one security group (then deleted),
    the cheapest creation every course scenario that writes depends on."""
    from popek.checks.cloud import secgroups
    from popek.checks.cloud.ledger import Ledger

    if not read_only(cloud.roles):
        return None
    ledger = Ledger(cloud.conn, cloud.facts["prefix"])
    try:
        secgroups.create_group(cloud.conn, ledger, "write-probe")
    except Exception as exc:  # only a 403 is the answer; anything else is no answer to this question
        refused = refusal_text(exc)
        if refused is None:
            return None
        roles = ", ".join(sorted(cloud.roles))
        return (f"ce compte n'a que le rôle {roles} : le cloud refuse ses écritures (création d'un groupe de "
                f"sécurité par Neutron : {refused})")
    finally:
        ledger.cleanup()
    return None
