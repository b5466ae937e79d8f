"""Glue for features/cloud/calcul.feature -> popek.checks.cloud.compute / client / probe; and `room`, the
one step helper of every scenario that makes servers, volumes or floating IPs (the project's quota)."""
import contextlib
import os
import shlex
import time

import pytest
from pytest_bdd import given, then, when

from popek.checks.cloud import client, compute, glance, names, network, neutron_quota, probe
from popek.steps.cloud_common import bootable, unbootable_images


class _Refusals(contextlib.AbstractContextManager):
    """What room() gives: inside its block, a refusal for lack of quota (compute.NoRoom) skips the scenario."""

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, compute.NoRoom):
            pytest.skip(str(exc))
        over = compute.api_refusal(exc) if exc is not None else None
        if over:    # an API's own refusal for lack of quota (Cinder's 413 on a volume…), met outside boot()
            pytest.skip(over)
        return False


def room(conn, floating_ips=None, neutron=None, **needs) -> _Refusals:
    """Skip (IGNORÉ, the quota named with its limit and its use) when the project's quota leaves no room for
    `needs` (compute.quota_reason: instances, cores, ram in MiB, volumes, gigabytes) or for `floating_ips`
    more floating IPs (network.floating_ip_quota_reason's `needed`: 0 asks only whether the quota is 0;
    None: not asked), read before anything is made; unknown or unlimited limits go on. Returns a context
    manager for the making
    itself: `with room(conn, instances=1, cores=f.vcpus, ram=f.ram): boot(…)` also skips when Nova or
    Cinder refuse it for lack of quota (a race with another boot of the project: the API's 403, or a
    build its conductor's recheck put in ERROR), with Nova's numbers. Any other refusal stays ÉCHEC.
    `neutron`: what the scenario makes in Neutron ({"network": 1, "port": 2…}, Neutron's quota names),
    read from its quota details (network.neutron_room_reason)."""
    reason = compute.quota_reason(conn, **needs)
    if reason is None and neutron:
        reason = network.neutron_room_reason(conn, neutron)
    if reason is None and floating_ips is not None:
        reason = network.floating_ip_quota_reason(conn, needed=floating_ips)
    if reason:
        pytest.skip(reason)
    return _Refusals()


@when("je liste les images du cloud", target_fixture="images")
def list_images(conn, evidence):
    found = compute.images(conn)
    evidence.json("images", [{"nom": i.name, "format": i.disk_format, "taille (octets)": i.size,
                              "min_disk (Gio)": i.min_disk, "min_ram (Mio)": i.min_ram} for i in found])
    return found


@then("au moins une image est active, avec son format de disque et sa taille")
def image_ready(images):
    ready = [i for i in images if i.disk_format and i.size]
    assert ready, "aucune image active avec un format de disque et une taille"


@then("les données de chaque image active se relisent depuis Glance")
def image_data_readable(cloud, conn, images, evidence):
    """A 403 (glance.Refused) means "not checked" only for a read-only account: Glance's default
    `download_image` wants the member role. A member refused the data of an image it lists is a policy (or
    fault) that also keeps Nova from booting that image for it (Nova downloads with the user's token): ÉCHEC."""
    found = [p for p in glance.data_problems(conn, images) if p]
    refused = [p for p in found if isinstance(p, glance.Refused)]
    problems = [p for p in found if not isinstance(p, glance.Refused)]
    reader = probe.read_only(cloud.roles)
    evidence.figure("images dont les données se relisent", f"{len(images) - len(found)}/{len(images)}"
                    + (f" ({len(refused)} refusée(s) à ce compte)" if refused else ""))
    if refused and not reader:
        problems += [f"{p} ; Glance refuse à un membre du projet (rôles : {', '.join(sorted(cloud.roles)) or 'aucun'}) "
                     "les données d'une image qu'il liste (politique download_image ; Nova les télécharge avec le "
                     "jeton de l'utilisateur pour démarrer l'image)" for p in refused]
    assert not problems, "image active qui n'est pas prête à démarrer : " + " ; ".join(problems)
    if refused:     # a reader: those images were not checked, so no RÉUSSI over them
        rest = len(images) - len(refused)
        pytest.skip(f"les données de {len(refused)}/{len(images)} image(s) ne peuvent pas être relues avec ce "
                    f"compte (rôle {', '.join(sorted(cloud.roles))})"
                    + (f", les {rest} autre(s) se relisent" if rest else "") + " : " + " ; ".join(refused))


#: why C20 did not check the images when the run's pair judged nothing (Shared.judged_outcome), in French
PAIR_UNDECIDED = {"undecided": "pas d'autre image démarrée à côté d'elle pour départager",
                  "reason": "console non lue ou factice", "error": "jugement interrompu par une erreur"}


@then("chaque image que ce run a démarrée a démarré")
def images_boot(cloud, request, evidence):
    """An image that Nova makes ACTIVE and that writes nothing on its console while another image boots on the
    same cloud is not ready to boot: ÉCHEC naming it. Found by the dataplane probe on a cloud reached without
    admin credentials (probe.UnbootableImage), else by the run's own pair of instances (probe.judge_pair: the
    embedded cloud, any admin cloud), asked for here when the probe booted nothing and the cloud runs guests.
    The run's other scenarios boot another image."""
    found = unbootable_images(cloud)
    probed = (getattr(cloud, "facts", None) or {}).get("probed_images") or {}
    evidence.json("images démarrées par la sonde du plan de données", probed or not_probed(cloud))
    judged, why = None, "aucune instance démarrée par ce run pour ce constat"
    if not probed:
        judged = pair_judged(cloud, request)
        evidence.json("images démarrées par la paire d'instances du run", judged)
        found = probe.unbootable(cloud)     # the pair's finding, in whichever worker it was made
        if isinstance(judged, dict):
            # only a pair seen booting, or judged unbootable beside another image that booted, checked the
            # images: 'undecided' (no other image, it did not boot either), 'reason' (no console) or a
            # judgement that raised decided nothing
            outcome = getattr(request.getfixturevalue("shared"), "judged_outcome", "") or ""
            if outcome not in ("booted", "unbootable"):
                judged, why = None, ("la paire d'instances du run n'a pas départagé l'image et le plan de données ("
                                     + PAIR_UNDECIDED.get(outcome, "non jugée") + ")")
    checked = probed or isinstance(judged, dict) and judged
    evidence.json("images qui ne démarrent pas", found or ("aucune" if checked else f"non vérifié : {why}"))
    assert not found, "image active qui ne démarre pas sur ce cloud : " + " ; ".join(found.values())


def pair_judged(cloud, request):
    """What the run's pair showed of its image (Shared.judged: {image id: text}), made now when no scenario
    made it yet; a French « non vérifié » with why when the cloud runs no guest or the pair could not be made
    (that is its scenarios' verdict, not the images')."""
    from popek.checks.cloud import needs, shared as shared_mod

    try:
        reason = needs.need_dataplane(cloud)
    except AssertionError as exc:   # a broken dataplane: the dataplane scenarios' ÉCHEC, not an image's
        return f"non vérifié : {str(exc)[:300]}"
    if reason:
        return f"non vérifié : {reason}"
    shared = request.getfixturevalue("shared")
    try:
        shared.pair()
    except (compute.NothingToBoot, shared_mod.Unavailable, shared_mod.RereadFailed) as exc:
        return f"non vérifié : la paire d'instances du run n'a pas démarré : {str(exc)[:300]}"
    return shared.judged or "non vérifié : la paire d'instances du run n'a pas été jugée"


def not_probed(cloud) -> str:
    """Why no probe instance was booted by this run's process (C20's evidence, never « aucune » image failing
    as if images had been tried)."""
    facts = getattr(cloud, "facts", None) or {}
    if getattr(cloud, "admin", None) is not None:
        why = "identifiants admin : l'état des hyperviseurs a répondu"
    elif facts.get("dataplane"):
        why = facts["dataplane"]
    elif facts.get("dataplane_broken"):
        why = facts["dataplane_broken"]
    else:
        why = "le plan de données n'a pas été sondé"
    return f"non vérifié : aucune instance sonde ({why})"


@when("je liste les gabarits du cloud", target_fixture="flavors")
def list_flavors(conn, evidence):
    found = compute.flavors(conn)
    evidence.json("gabarits (par RAM croissante)", compute.flavor_table(found))
    evidence.figure("gabarits", len(found))
    return found


@then("chaque gabarit donne un nombre de vCPU, une RAM et un disque")
def flavor_sizes(flavors, evidence):
    assert flavors, "aucun gabarit"
    bad = compute.flavor_defects(flavors)
    assert not bad, "gabarits qui ne sont pas une taille de CPU, RAM et disque : " + " ; ".join(bad)
    zero = [f.name for f in flavors if f.disk == 0]
    evidence.figure("gabarits de disque 0 (taille de l'image)", ", ".join(zero) or "aucun")


@given("une clé SSH générée sur cette machine", target_fixture="ssh_key")
def local_key():
    return compute.ssh_keypair()


@when("je l'importe comme paire de clés", target_fixture="keypair")
def import_key(conn, ledger, ssh_key):
    return compute.create_keypair(conn, ledger, ssh_key[1])


@then("le cloud garde la même clé publique, avec la même empreinte")
def same_public_key(conn, keypair, ssh_key, evidence):
    stored = conn.compute.get_keypair(keypair.name)
    evidence.figure("empreinte MD5 (Nova)", stored.fingerprint)
    assert stored.public_key.split()[:2] == ssh_key[1].split()[:2], "la clé publique relue diffère"
    assert stored.fingerprint == compute.md5_fingerprint(ssh_key[1]), \
        f"empreinte Nova {stored.fingerprint} ≠ calculée {compute.md5_fingerprint(ssh_key[1])}"


@then("le cloud ne détient pas la clé privée")
def no_private_key(conn, keypair):
    stored = conn.compute.get_keypair(keypair.name)
    assert not getattr(stored, "private_key", None), "le cloud renvoie une clé privée"


@given("le gabarit « small », l'image « Debian 13 » et le réseau « public » du cours", target_fixture="course_names")
def course_names(cloud, evidence):
    chosen, missing = names.resolve(cloud.conn, cloud.names)
    evidence.json("noms de la commande du cours", {"noms de ce cloud": chosen, "absents de ce cloud": missing})
    if missing:
        pytest.skip(" ; ".join(missing))
    return chosen


@when("je lance la commande du cours avec le client openstack", target_fixture="course_server")
def course_command(cloud, ledger, evidence, course_names):
    args = names.server_create_args(course_names)
    line = "openstack " + " ".join(shlex.quote(a) for a in args)
    flavor = cloud.conn.compute.find_flavor(course_names["flavor"], ignore_missing=True)
    with room(cloud.conn, neutron={"port": 1},
              **(compute.server_needs(flavor) if flavor is not None else {"instances": 1})):
        entry = ledger.record("server", ledger.name("cours"))
        evidence.figure("commande", f"{line} {entry.name}")
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                created = client.openstack_cli(cloud, [*args, entry.name, "-c", "id", "-c", "status"], os.environ)
                break
            except AssertionError as exc:   # the client's message holds Nova's: a refusal for lack of quota skips
                over = compute.cli_refusal(cloud.conn, str(exc))
                if over:
                    raise compute.NoRoom(f"{line} {over}") from None
                if attempt == 1 and neutron_quota.NOVA_PORTS in str(exc):
                    continue    # a port freed since Nova counted them (compute.boot's race): asked once more
                raise
        entry.id = created["id"]
        server = compute.wait_active(cloud.conn, cloud.conn.compute.get_server(entry.id), timeout=300,
                                     admin=cloud.admin, admin_reason=cloud.admin_reason)
    evidence.figure("création → ACTIVE", time.monotonic() - started, " s")
    return server


@then("l'instance créée par le client est ACTIVE, puis je la supprime aussitôt")
def course_active(conn, ledger, course_server):
    status = course_server.status
    ledger.delete(course_server.id)  # Debian 13 under TCG is heavy: gone before it finishes booting
    assert status == "ACTIVE", status


@when("je crée une instance avec un gabarit, une image et un réseau", target_fixture="booted")
def create_server(cloud, conn, ledger, evidence):
    image, flavor = bootable(conn, avoid=probe.unbootable(cloud))     # not an image the run found not booting
    existing = compute.existing_network(conn, own=ledger.prefix)     # the project's, or this run's
    # before anything is made: the server, its port, and the network when the project has none to use
    refusals = room(conn, neutron=compute.network_needs(existing), **compute.server_needs(flavor))
    network = compute.project_network(conn, ledger, existing=existing)
    evidence.json("server create", {"--flavor": flavor.name, "--image": image.name, "--net": network.name})
    with refusals:
        server = compute.boot(conn, ledger, "server", image, flavor, network, admin=cloud.admin,
                              admin_reason=cloud.admin_reason)
    return {"server": server, "image": image, "flavor": flavor}


@then("l'instance est ACTIVE")
def is_active(booted):
    assert booted["server"].status == "ACTIVE", booted["server"].status


@then("elle a des vCPU, de la RAM, un disque et un port réseau")
def has_parts(conn, booted, evidence):
    parts = compute.resources(conn, booted["server"])
    evidence.json("l'instance", parts)
    assert parts["vcpus"] and parts["ram (Mio)"] and parts["disque (Gio)"] is not None, parts
    assert parts["ports"], "l'instance n'a pas de port réseau"


@then("elle a démarré de l'image choisie avec le gabarit choisi")
def from_image(booted):
    server, image, flavor = booted["server"], booted["image"], booted["flavor"]
    assert (server.image or {}).get("id") == image.id, f"image {server.image} ≠ {image.id}"
    assert (server.flavor.get("vcpus"), server.flavor.get("ram")) == (flavor.vcpus, flavor.ram)


@when("je supprime l'instance")
def delete_server(conn, ledger, booted):
    ledger.delete(booted["server"].id)


@then("elle n'est plus dans la liste des instances")
def gone(conn, booted):
    assert booted["server"].id not in [s.id for s in conn.compute.servers()]


@when("je demande à Nova la liste de ses hyperviseurs", target_fixture="hypervisors")
def hypervisors(cloud, evidence):
    types = probe.hypervisor_types(cloud.admin)
    evidence.json("types d'hyperviseur", types)
    return types


@then("le cloud virtualise avec QEMU/KVM")
def qemu_kvm(hypervisors):
    assert hypervisors, "Nova n'a aucun hyperviseur en service"
    if all(t.lower() == "fake" for t in hypervisors):
        pytest.skip("hyperviseur fake (pilote de test de Nova) : ce cloud ne virtualise rien, "
                    "QEMU/KVM ne peut pas y être constaté")
    kvm_like = [t for t in hypervisors if t.upper() in ("QEMU", "KVM")]
    if not kvm_like:
        pytest.skip(f"ce cloud utilise {', '.join(hypervisors)} : « le plus souvent QEMU/KVM » ne se juge pas sur un seul cloud")
    if "KVM" not in [t.upper() for t in hypervisors]:
        # libvirt reports "QEMU" whether its guests run under KVM or under TCG (no KVM): never a pass for KVM
        pytest.skip(f"Nova annonce {', '.join(hypervisors)} : son pilote libvirt le dit sous KVM comme sous TCG (sans "
                    "KVM) ; l'hyperviseur réel est mesuré dans une instance (plan_de_donnees.feature, signature CPUID)")
