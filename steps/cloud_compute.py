"""Glue for features/cloud/calcul.feature -> popek.checks.cloud.compute / probe."""
import pytest
from pytest_bdd import given, then, when

from popek.checks.cloud import compute, probe
from popek.steps.cloud_common import bootable


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


@when("je liste les gabarits du cloud", target_fixture="flavors")
def list_flavors(conn, evidence):
    found = compute.flavors(conn)
    evidence.json("gabarits (par RAM croissante)", compute.flavor_table(found))
    evidence.figure("gabarits", len(found))
    return found


@then("chaque gabarit donne un nombre de vCPU, une RAM et un disque")
def flavor_sizes(flavors):
    assert flavors, "aucun gabarit"
    bad = [f.name for f in flavors if not (f.vcpus and f.vcpus > 0 and f.ram and f.ram > 0 and f.disk is not None)]
    assert not bad, f"gabarits sans vCPU/RAM/disque : {bad}"


@then("dans une même famille, un gabarit plus gros en RAM n'a pas moins de vCPU ni de disque")
def flavor_order(flavors):
    if len(flavors) < 2:
        pytest.skip("un seul gabarit : pas d'ordre à vérifier")
    bad = compute.ordering_violations(flavors)
    assert not bad, "ordre rompu : " + " ; ".join(bad)


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


@when("je crée une instance avec un gabarit, une image et un réseau", target_fixture="booted")
def create_server(conn, ledger, evidence):
    image, flavor = bootable(conn)
    network = compute.project_network(conn, ledger)
    evidence.json("server create", {"--flavor": flavor.name, "--image": image.name, "--net": network.name})
    server = compute.boot(conn, ledger, "server", image, flavor, network)
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
