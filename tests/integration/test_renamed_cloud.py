"""Issue #19, any cloud's names: the embedded cloud seen through a teacher's names, in two whole runs.

An admin gives what the course types verbatim (`openstack server create --flavor small --image
'Debian 13' --net public`) a real cloud's names, and adds decoys the member sees:

| the course's | on the renamed cloud | how (admin API; undone in the end) |
|---|---|---|
| image `Debian 13` | `debian-13-genericcloud-amd64` | Glance renames it (same id) |
| flavor `small` | `m1.small` (same vCPU, RAM, disk, extra specs) | Nova can neither rename a flavor nor make a public one private: `m1.small` is made, `small` deleted, and `small` made again in the end with its id, sizes and extra specs |
| network `public` | `ext-net` | Neutron renames it (same id) |
| decoys | image `cirros-0.6.2-x86_64-disk` (queued: no data), flavor `m1.xlarge`, shared network `provider-net` (no subnet) | made, deleted in the end |

Then `popek run cloud --no-cloud-up -n 2` twice, as a teacher would: (a) without a mapping, (b) with a
./popek.yaml mapping the three names. Asserted: no ÉCHEC in either run; in (a) the course-verbatim
scenario is IGNORÉ with what the cloud lacks and the option that gives it; in (b) it runs with the
cloud's names (its command line shows them) and passes; every other scenario gets the same verdict in
both runs (it picks a fitting image, flavor and network, never the course's names), and no other skip
reason is about a missing image, flavor or network. The verdict tables are printed (and written to
$POPEK_RENAMED_TABLES when set).

Measured 2026-12-06 on the embedded cloud (dataplane, QEMU TCG), `-n 2`: (a) 257 s, RÉUSSI 38, ÉCHEC 0,
IGNORÉ 3; (b) 271 s, RÉUSSI 39, ÉCHEC 0, IGNORÉ 2; the test 535 s in all (renames, restore and its checks ~7 s):

| claims | scénario | (a) no mapping | (b) popek.yaml |
|---|---|---|---|
| C11 | Le cloud est de l'IaaS ; les autres offres « as a service » du cours qu'il expose sont relevées | RÉUSSI | RÉUSSI |
| C14 | L'hyperviseur qui exécute les instances, mesuré depuis une instance (signature CPUID) | IGNORÉ : les instances de ce cloud tournent sous QEMU (TCG, sans KVM) : signatu… | IGNORÉ : les instances de ce cloud tournent sous QEMU (TCG, sans KVM) : signatu… |
| C14 | Le type d'hyperviseur du cloud | IGNORÉ : Nova annonce QEMU : son pilote libvirt le dit sous KVM comme sous TCG … | IGNORÉ : Nova annonce QEMU : son pilote libvirt le dit sous KVM comme sous TCG … |
| C15, C23 | Un volume garde ses données d'une instance à l'autre | RÉUSSI | RÉUSSI |
| C16 | Un objet déposé par HTTP se relit octet pour octet | RÉUSSI | RÉUSSI |
| C17 | Un GET HTTP sur /servers renvoie la liste des instances | RÉUSSI | RÉUSSI |
| C18, C19 | cloud-init applique les user data | RÉUSSI | RÉUSSI |
| C18, C26 | La clé de la paire ouvre l'instance, une autre clé est refusée ; l'instance lit ses metadata | RÉUSSI | RÉUSSI |
| C20 | Les images sont des modèles prêts à démarrer | RÉUSSI | RÉUSSI |
| C21 | server create avec un gabarit, une image et un réseau démarre une instance | RÉUSSI | RÉUSSI |
| C22 | Les gabarits sont des tailles prédéfinies de CPU, de RAM et de disque | RÉUSSI | RÉUSSI |
| C24 | L'IP flottante déplacée mène SSH sur l'autre instance | RÉUSSI | RÉUSSI |
| C24 | Une IP flottante associée à une instance passe à une autre en gardant son adresse | RÉUSSI | RÉUSSI |
| C25 | Le groupe de sécurité bloque, puis laisse passer après l'ajout d'une règle | RÉUSSI | RÉUSSI |
| C25 | Le groupe « default » du projet et ses règles | RÉUSSI | RÉUSSI |
| C25 | Toute règle invalide est refusée sans rien créer (propriété vérifiée avec Hypothesis) | RÉUSSI | RÉUSSI |
| C25 | Toute règle valide se relit à l'identique (propriété vérifiée avec Hypothesis) | RÉUSSI | RÉUSSI |
| C25 | Une règle ajoutée apparaît dans le groupe | RÉUSSI | RÉUSSI |
| C25 | Une règle à groupe distant ne laisse entrer que les membres de ce groupe | RÉUSSI | RÉUSSI |
| C26 | Une paire de clés garde la clé publique, la clé privée reste ici | RÉUSSI | RÉUSSI |
| C27 | Le catalogue expose les projets OpenStack du cours, et chacun répond (×6) | RÉUSSI | RÉUSSI |
| C28 | Les versions annoncées par les API désignent une version publiée d'OpenStack | RÉUSSI | RÉUSSI |
| C30 | Le catalogue nomme le projet qui remplit chaque fonction du cours (×6) | RÉUSSI | RÉUSSI |
| C31 | Le cloud embarqué s'appuie sur MariaDB et RabbitMQ, qui répondent | RÉUSSI | RÉUSSI |
| C32 | Le cloud embarqué a été installé avec pip | RÉUSSI | RÉUSSI |
| C33, C36 | openstack image list parle à Glance [image, Glance, images] | RÉUSSI | RÉUSSI |
| C33, C36 | openstack network list parle à Neutron [network, Neutron, réseaux] | RÉUSSI | RÉUSSI |
| C33, C36 | openstack server list parle à Nova | RÉUSSI | RÉUSSI |
| C33, C37 | La commande du cours « openstack server create --flavor small --image 'Debian 13' --net public » démarre une instance | IGNORÉ : le cloud n'a pas de gabarit « small » (donnez --flavor …) ; le cloud n… | RÉUSSI |
| C34 | Un fichier openrc avec l'URL de Keystone, un login, un mot de passe et un projet suffit au client | RÉUSSI | RÉUSSI |
| C35 | La première requête authentifiée renvoie le catalogue, qui révèle les autres API | RÉUSSI | RÉUSSI |

Opt-in (two whole cloud runs, ~9 min): POPEK_SLOW_FAULTS=1, under `flock -x /tmp/popek-cloud.lock` (the renames
change the cloud for everyone). Everything is undone in `finally`, on Ctrl-C and SIGTERM too (a run
under way gets SIGTERM first and cleans up its own resources), then checked: the same ids with the same
names and attributes, `small` back and public, the decoys gone, the member finds the course's three
names again. A write-ahead journal (`<popek state>/renamed-cloud-undo.json`) lets the next run of this
test undo what a killed one left, before anything else.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from popek import paths

import verdicts
from faults import slow
from helpers import VENV_BIN, running_cloud

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("deux exécutions entières de `popek run cloud` sur un cloud renommé,", " (sous flock -x)")]

#: the course's name → the renamed cloud's (the mapping of run (b)'s popek.yaml)
RENAMED = {"small": "m1.small", "Debian 13": "debian-13-genericcloud-amd64", "public": "ext-net"}
DECOY_IMAGE, DECOY_FLAVOR, DECOY_NETWORK = "cirros-0.6.2-x86_64-disk", "m1.xlarge", "provider-net"
#: said by what this test makes, so that whoever finds it knows whose it is
MARK = "popek: tests/integration/test_renamed_cloud.py (issue #19)"
#: the course-verbatim scenario (features/cloud/calcul.feature)
VERBATIM = "La commande du cours « openstack server create"
#: skip reasons that would mean a scenario needed one of the course's names
NAME_REASONS = ("le cloud n'a pas", "aucune image", "aucun gabarit", "rien à démarrer", "réseau externe")


def journal_path() -> Path:
    return paths.state_home() / "renamed-cloud-undo.json"


def save(journal: dict) -> None:
    path = journal_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(journal, indent=1, ensure_ascii=False))


# --- what is renamed, and its record (what the restore must give back) ------------------------------

def flavor_record(admin, flavor_id: str) -> dict | None:
    from openstack import exceptions

    try:
        f = admin.compute.get_flavor(flavor_id, get_extra_specs=True)
    except exceptions.NotFoundException:
        return None
    return {"id": f.id, "name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk, "swap": f.swap or 0,
            "ephemeral": f.ephemeral or 0, "rxtx_factor": f.rxtx_factor, "is_public": f.is_public,
            "description": f.description, "extra_specs": dict(f.extra_specs or {})}


def image_record(admin, image_id: str) -> dict:
    i = admin.image.get_image(image_id)
    return {"id": i.id, "name": i.name, "status": i.status, "visibility": i.visibility, "checksum": i.checksum,
            "size": i.size, "min_ram": i.min_ram, "min_disk": i.min_disk, "owner": i.owner_id}


def network_record(admin, network_id: str) -> dict:
    n = admin.network.get_network(network_id)
    return {"id": n.id, "name": n.name, "status": n.status, "shared": n.is_shared, "external": n.is_router_external,
            "subnets": sorted(n.subnet_ids), "type": n.provider_network_type,
            "physnet": n.provider_physical_network, "project": n.project_id}


def course_objects(admin) -> dict:
    """The journal of a cloud with the course's names: the records of `Debian 13`, `small`, `public`."""
    images = [i for i in admin.image.images(name="Debian 13") if i.status == "active"]
    flavor = admin.compute.find_flavor("small", ignore_missing=True)
    network = admin.network.find_network("public", ignore_missing=True)
    if len(images) != 1 or flavor is None or network is None:
        pytest.skip(f"le cloud embarqué n'a pas les noms du cours ({len(images)} image(s) « Debian 13 », "
                    f"gabarit « small » {'présent' if flavor else 'absent'}, réseau « public » "
                    f"{'présent' if network else 'absent'})")
    return {"image": image_record(admin, images[0].id), "flavor": flavor_record(admin, flavor.id),
            "network": network_record(admin, network.id),
            "made": {"flavor": [], "image": [], "network": []}}


def taken_names(admin) -> list[str]:
    """The names this test gives that the cloud already has (made by someone else: never touched)."""
    flavors = {f.name for f in admin.compute.flavors(is_public="None")}
    images = {i.name for i in admin.image.images()}
    networks = {n.name for n in admin.network.networks()}
    wanted = [("gabarit", RENAMED["small"], flavors), ("gabarit", DECOY_FLAVOR, flavors),
              ("image", RENAMED["Debian 13"], images), ("image", DECOY_IMAGE, images),
              ("réseau", RENAMED["public"], networks), ("réseau", DECOY_NETWORK, networks)]
    return [f"{kind} « {name} »" for kind, name, have in wanted if name in have]


# --- renaming, and undoing it -------------------------------------------------------------------------

def rename(admin, journal: dict) -> None:
    """The course's names → a teacher's cloud's, and the decoys; the journal saved before each change."""
    small = journal["flavor"]
    save(journal)
    admin.image.update_image(journal["image"]["id"], name=RENAMED["Debian 13"])
    admin.network.update_network(journal["network"]["id"], name=RENAMED["public"])
    for name, vcpus, ram, disk in ((RENAMED["small"], small["vcpus"], small["ram"], small["disk"]),
                                   (DECOY_FLAVOR, 8, 16384, 160)):
        made = admin.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True,
                                           description=MARK)
        journal["made"]["flavor"].append(made.id)
        save(journal)
        if name == RENAMED["small"] and small["extra_specs"]:
            admin.compute.create_flavor_extra_specs(made, small["extra_specs"])
    admin.compute.delete_flavor(small["id"])
    # an image record without data (queued): listed, never bootable nor picked (pick_image takes active ones)
    answer = admin.image.post("/images", json={"name": DECOY_IMAGE, "disk_format": "qcow2", "container_format": "bare",
                                               "visibility": "public", "popek_test": MARK})
    assert answer.status_code == 201, (answer.status_code, answer.text[:300])
    journal["made"]["image"].append(answer.json()["id"])
    save(journal)
    decoy = admin.network.create_network(name=DECOY_NETWORK, is_shared=True, description=MARK)
    journal["made"]["network"].append(decoy.id)
    save(journal)


def restore(admin, journal: dict) -> list[str]:
    """Undo rename() (each step tried even when another fails); the problems left, in French."""
    from openstack import exceptions

    problems = []

    def attempt(what, fn):
        try:
            fn()
        except exceptions.NotFoundException:
            pass
        except Exception as exc:  # noqa: BLE001 - every step is tried; the failures are reported together
            problems.append(f"{what} : {type(exc).__name__} : {exc}")

    small = journal["flavor"]
    for fid in journal["made"]["flavor"]:
        attempt(f"suppression du gabarit {fid}", lambda fid=fid: admin.compute.delete_flavor(fid, ignore_missing=True))
    if flavor_record(admin, small["id"]) is None:
        def remake():
            fields = {k: small[k] for k in ("id", "name", "vcpus", "ram", "disk", "swap", "ephemeral", "rxtx_factor",
                                            "is_public", "description") if small[k] is not None}
            made = admin.compute.create_flavor(**fields)
            if small["extra_specs"]:
                admin.compute.create_flavor_extra_specs(made, small["extra_specs"])
        attempt("gabarit « small » refait", remake)
    attempt("image renommée", lambda: admin.image.update_image(journal["image"]["id"], name=journal["image"]["name"]))
    attempt("réseau renommé", lambda: admin.network.update_network(journal["network"]["id"],
                                                                   name=journal["network"]["name"]))
    for iid in journal["made"]["image"]:
        attempt(f"suppression de l'image {iid}", lambda iid=iid: admin.image.delete_image(iid, ignore_missing=True))
    for nid in journal["made"]["network"]:
        attempt(f"suppression du réseau {nid}", lambda nid=nid: admin.network.delete_network(nid, ignore_missing=True))
    return problems


def restored(admin, journal: dict) -> list[str]:
    """What differs from the journal's records after restore() (empty: the cloud is as it was)."""
    from popek.checks.cloud import connection, names

    wrong = []
    for kind, record in (("flavor", flavor_record), ("image", image_record), ("network", network_record)):
        try:
            now = record(admin, journal[kind]["id"])
        except Exception as exc:  # noqa: BLE001 - said with the rest
            now = f"{type(exc).__name__} : {exc}"
        if now != journal[kind]:
            wrong.append(f"{kind} : {now} ≠ {journal[kind]}")
    left = taken_names(admin)
    if left:
        wrong.append(f"encore là : {', '.join(left)}")
    member = connection.connect(None, {}, paths.embedded_clouds_yaml()).conn
    _, missing = names.resolve(member, {})
    return wrong + [f"le membre : {m}" for m in missing]


def interrupt(signum, frame):
    """SIGTERM (CI cancelling the job) as Ctrl-C: KeyboardInterrupt, so that `finally` restores the cloud."""
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def renamed_cloud(admin):
    """The embedded cloud with a teacher's names and decoys (after undoing what a killed run left); the
    course's names back, checked, in the end (SIGTERM: as Ctrl-C; ignored while restoring)."""
    if journal_path().is_file():
        left = json.loads(journal_path().read_text())
        problems = restore(admin, left) + restored(admin, left)
        assert not problems, f"l'exécution précédente de ce test a laissé le cloud renommé : {problems}"
        journal_path().unlink()
    taken = taken_names(admin)
    if taken:
        pytest.skip(f"le cloud a déjà {', '.join(taken)} (pas à ce test : il n'y touche pas)")
    journal = course_objects(admin)
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        rename(admin, journal)
        yield journal
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            problems = restore(admin, journal)
            problems += restored(admin, journal)
        finally:
            signal.signal(signal.SIGTERM, previous)
        assert not problems, f"cloud mal restauré : {problems}"
        journal_path().unlink()


# --- the runs -------------------------------------------------------------------------------------------

def run_cloud(cwd: Path) -> tuple[dict, float, subprocess.CompletedProcess]:
    """`popek run cloud --no-cloud-up -n 2` in `cwd` (its ./popek.yaml, if any, is the mapping), on the
    embedded cloud: (verdict rows, seconds, the process). Interrupted (Ctrl-C, SIGTERM, timeout), the run
    gets SIGTERM and is waited for while it deletes what it made."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OS_") and k not in ("POPEK_CONFIG", "POPEK_COURSE_NAMES")}
    results = cwd / "results"
    argv = [str(VENV_BIN / "popek"), "run", "cloud", "--no-cloud-up", "--no-report", "-n", "2", "--results", str(results)]
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=1500)
    except BaseException:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        raise
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    (cwd / "popek.out").write_text(out + err)  # beside the results, for whoever reads a failure
    rows = verdicts.read_run(results, paths.FEATURES_DIR)
    assert rows, f"aucun résultat : {out[-3000:]} {err[-2000:]}"
    return rows, time.monotonic() - started, done


def test_a_renamed_cloud_passes_adapts_or_skips_never_fails_for_a_name(tmp_path, capsys):
    from popek.checks.cloud import connection

    running_cloud()
    admin = connection.connect(connection.EMBEDDED_ADMIN, {}, paths.embedded_clouds_yaml()).conn
    plain, mapped = tmp_path / "a", tmp_path / "b"
    plain.mkdir()
    mapped.mkdir()
    (mapped / "popek.yaml").write_text(yaml.safe_dump({"course-names": RENAMED}, allow_unicode=True))
    with renamed_cloud(admin):
        a, a_s, a_proc = run_cloud(plain)
        b, b_s, b_proc = run_cloud(mapped)
    heads = {f"(a) sans correspondance, {a_s:.0f} s": a, f"(b) popek.yaml, {b_s:.0f} s": b}
    text = (f"(a) {verdicts.counts(a)} ; (b) {verdicts.counts(b)}\n\n" + verdicts.table(heads, collapse=True) + "\n")
    if os.environ.get("POPEK_RENAMED_TABLES"):
        Path(os.environ["POPEK_RENAMED_TABLES"]).write_text(text)
    with capsys.disabled():
        print("\n" + text)

    failed = [(run, label, row.reason[:400]) for run, rows in (("a", a), ("b", b))
              for label, row in rows.items() if row.verdict == "ÉCHEC"]
    assert not failed, failed
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    verbatim = [label for label in a if label.startswith(VERBATIM)]
    assert len(verbatim) == 1, sorted(a)
    plain_row, mapped_row = a[verbatim[0]], b[verbatim[0]]
    assert plain_row.verdict == "IGNORÉ", plain_row
    for said in ("le cloud n'a pas de gabarit « small » (donnez --flavor …)",
                 "le cloud n'a pas d'image « Debian 13 » (donnez --image …)",
                 "le cloud n'a pas de réseau « public » (donnez --net …)"):
        assert said in plain_row.reason, plain_row.reason
    assert mapped_row.verdict == "RÉUSSI", mapped_row
    command = " ".join(str(v) for v in mapped_row.figures.values())
    assert "--flavor m1.small --image debian-13-genericcloud-amd64 --net ext-net" in command, mapped_row.figures
    others = [label for label in a if label != verbatim[0]]
    differ = [(label, a[label].verdict, b[label].verdict) for label in others if a[label].verdict != b[label].verdict]
    assert not differ, differ
    for_a_name = [(label, rows[label].reason) for rows in (a, b) for label in others
                  if any(n in rows[label].reason for n in NAME_REASONS)]
    assert not for_a_name, for_a_name
    assert a_proc.returncode == 0 and b_proc.returncode == 0, (a_proc.stdout[-2000:], b_proc.stdout[-2000:])
