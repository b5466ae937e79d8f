"""Any cloud, round 6 (hA6): names and images no test had tried, each on a fresh project of the embedded cloud
(a member-only user, reached through a clouds.yaml entry that is not popek's), deleted in the end with every
image, flavor and project made for it.

Measured by hA6 on 2026-12-07 (19:26–19:30 UTC, `popek run cloud --os-cloud uni --no-cloud-up`):

| the cloud | before | after |
|---|---|---|
| project « popek-…-Étudiants 2026 », network « réseau privé », private flavor « m1.petit (1 vCPU) » granted to the project, image « Debian 13 — cours », given by --flavor/--image/--net (C37, C34, C22, -n 2) | 3 RÉUSSI, 32 s | unchanged |
| + a second image « Debian 13 — cours » (queued) | C37 ÉCHEC by the code: popek took the active one, `openstack server create` refuses the name (« More than one Image exists ») | C37 IGNORÉ « le cloud a plusieurs images « Debian 13 — cours » (<ids>) : le client openstack refuse un nom ambigu (donnez --image <id>) » |
| + a second network « réseau privé » | C37 broken: DuplicateResource raised from the step (5 s) | C37 IGNORÉ naming both networks' ids; with --image <id> --net <id> RÉUSSI |
| images the client hides or cannot boot, 1 KiB each (smaller than any other): os_hidden, deactivated, community of another project, shared by another project and not accepted | none picked, none in popek's list | unchanged; the shared one once accepted is picked (as `openstack server create` could boot it) |
| a deactivated image given by --image | IGNORÉ « le cloud n'a pas d'image » (it has one) | IGNORÉ « l'image … est deactivated, pas active » |
| user « popek-…-élève Zoé », password with quotes, `$HOME`, backticks, `;`, « é » (C33 C34 C35, -n 2) | 6 RÉUSSI, no password written (49 s) | unchanged (the test 53 s) |
| a network named with another network's UUID, that UUID given by --net | the client and popek both take the network of that id | unchanged (the test 10 s, 20:24) |
| a private flavor `resources:VGPU=1` (1 vCPU, 256 MiB) granted to the project | C21 ÉCHEC « No valid host was found » (picked: the smallest) | C21 RÉUSSI on `tiny` (compute.pick_flavor passes over scheduling extra specs) |
| a copy of popek-tiny tagged `architecture=aarch64`, or `hw_firmware_type=uefi`, its name sorting first | C21 ÉCHEC « No valid host was found » / libvirt « loader attribute 'secure' cannot be specified when firmware autoselection is enabled » (C20 RÉUSSI meanwhile) | C21 RÉUSSI on popek-tiny (compute.pick_image passes over special_boot images) |

Opt-in (each test makes a project and runs popek or the API: 19:31–19:36 under load, images + GPU flavor 57 s (GPU flavor with arm/UEFI images 43 s at 20:01),
names 167 s, user 53 s; admin's listings show their images and flavors meanwhile): POPEK_SLOW_FAULTS=1, under `flock -s /tmp/popek-cloud.lock` (only the test's own project changes)."""
from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from popek import paths
from popek.checks.cloud import compute, connection, names

from faults import slow
from test_foreign_project import _remove, _run

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("chaque cas crée un projet, des images ou des gabarits, et y lance popek (~30–170 s)", " (sous flock -s)")]

IMAGE, FLAVOR, NETWORK = "Debian 13 — cours", "m1.petit (1 vCPU)", "réseau privé"


@contextlib.contextmanager
def project(label: str):
    """(admin, member connection, project, clouds.yaml entry, password, made): a fresh project named
    `popek-<8 hex>-<label>` (a leftover is known for popek's by ledger.NAME_RE) with a member-only user; the
    images, flavors and projects the test records in `made` deleted in the end, then the project's images,
    its content, the user and the project (test_foreign_project._remove)."""
    import openstack

    try:
        admin = connection.connect("popek-admin", {}, paths.embedded_clouds_yaml()).conn
    except connection.CloudUnavailable as exc:
        pytest.skip(f"pas de cloud embarqué : {exc}")
    tag = secrets.token_hex(4)
    pname, uname, password = f"popek-{tag}-{label}", f"popek-{tag}-ha6", secrets.token_urlsafe(18)
    ident = admin.identity
    made: dict[str, list] = {"images": [], "flavors": [], "projects": []}
    proj = ident.create_project(name=pname, domain_id="default")
    user = None
    try:
        user = ident.create_user(name=uname, domain_id="default", password=password, default_project_id=proj.id)
        ident.assign_project_role_to_user(proj, user, ident.find_role("member"))
        auth_url = yaml.safe_load(paths.embedded_clouds_yaml().read_text())["clouds"]["popek"]["auth"]["auth_url"]
        entry = {"auth": {"auth_url": auth_url, "username": uname, "password": password, "project_name": pname,
                          "user_domain_name": "Default", "project_domain_name": "Default"},
                 "region_name": "RegionOne", "identity_api_version": 3}
        member = openstack.connect(**entry["auth"], region_name="RegionOne")
        yield admin, member, proj, entry, password, made
    finally:
        try:
            for flavor in made["flavors"]:
                with contextlib.suppress(Exception):
                    admin.compute.delete_flavor(flavor, ignore_missing=True)
            owners = [proj.id, *(p.id for p in made["projects"])]
            for image in made["images"] + [i for o in owners for i in admin.image.images(owner=o)]:
                with contextlib.suppress(Exception):
                    admin.image.reactivate_image(image)     # a deactivated image is deleted all the same; kept simple
                with contextlib.suppress(Exception):
                    admin.image.delete_image(image, ignore_missing=True)
            for other in made["projects"]:
                with contextlib.suppress(Exception):
                    ident.delete_project(other, ignore_missing=True)
        finally:
            _remove(admin, proj, user)


def openstack_client(tmp: Path, entry: dict, *args: str) -> subprocess.CompletedProcess:
    """The `openstack` client beside this Python, on `entry` (a clouds.yaml of its own; no OS_* variable)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "clouds.yaml").write_text(yaml.safe_dump({"clouds": {"uni": entry}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(tmp / "clouds.yaml"), OS_CLOUD="uni", HOME=str(tmp))
    return subprocess.run([str(Path(sys.executable).parent / "openstack"), *args], env=env, capture_output=True,
                          text=True, timeout=120)


def verdicts(found) -> dict:
    return {r["name"]: (r["status"], ((r.get("statusDetails") or {}).get("message") or "")[:600]) for r in found}


def test_non_ascii_names_a_private_flavor_and_names_two_resources_bear(tmp_path):
    with project("Étudiants 2026") as (admin, member, proj, entry, password, made):
        source = compute.pick_image(member)     # the cloud's smallest image: a copy of it boots as it does
        data = member.image.download_image(source).content
        image = member.image.create_image(name=IMAGE, disk_format=source.disk_format,
                                          container_format=source.container_format or "bare", data=data)
        made["images"].append(image)
        net = member.network.create_network(name=NETWORK)
        member.network.create_subnet(name="sous-réseau privé", network_id=net.id, ip_version=4, cidr="10.252.61.0/24")
        flavor = admin.compute.create_flavor(name=FLAVOR, vcpus=1, ram=512, disk=1, is_public=False)
        made["flavors"].append(flavor)
        admin.compute.flavor_add_tenant_access(flavor, proj.id)
        given = ("--flavor", FLAVOR, "--image", IMAGE, "--net", NETWORK)

        proc, found, written = _run(tmp_path / "a", entry, "-n", "2", "--claim", "C37", "--claim", "C34",
                                    "--claim", "C22", *given)
        seen = verdicts(found)
        assert proc.returncode == 0 and len(seen) >= 3 and all(s == "passed" for s, _ in seen.values()), seen
        assert FLAVOR in written and IMAGE in written and password not in written

        twin = member.image.create_image(name=IMAGE, disk_format="raw", container_format="bare")   # queued
        made["images"].append(twin)
        member.network.create_network(name=NETWORK)
        refused = openstack_client(tmp_path / "cli", entry, "server", "create", *given, f"popek-{proj.name[6:14]}-never")
        assert refused.returncode != 0 and "More than one" in refused.stderr, refused.stderr[-600:]
        assert not list(member.compute.servers()), "the client refused the ambiguous name before creating anything"

        proc, found, written = _run(tmp_path / "b", entry, "--claim", "C37", *given)
        seen = verdicts(found)
        assert proc.returncode == 0 and [s for s, _ in seen.values()] == ["skipped"], seen
        reason = next(iter(seen.values()))[1]
        assert f"le cloud a plusieurs images « {IMAGE} »" in reason and image.id in reason and twin.id in reason, reason
        assert f"le cloud a plusieurs réseaux « {NETWORK} »" in reason and net.id in reason, reason

        proc, found, written = _run(tmp_path / "c", entry, "--claim", "C37", "--flavor", FLAVOR, "--image", image.id,
                                    "--net", net.id)
        seen = verdicts(found)
        assert proc.returncode == 0 and [s for s, _ in seen.values()] == ["passed"], seen
        assert password not in written


def test_images_the_client_hides_or_cannot_boot_are_never_picked(tmp_path):
    """Four images of 1 KiB (smaller than any the cloud has, so pick_image would take one it saw): hidden
    (os_hidden), deactivated, community of another project, shared by another project and not accepted.
    None is in popek's list or picked, and popek's list is within `openstack image list`'s; the shared one,
    once accepted, is picked (the check can fail). A deactivated image given by --image is said so."""
    blob = b"\0" * 1024
    with project("images") as (admin, member, proj, entry, password, made):
        other = admin.identity.create_project(name=f"popek-{secrets.token_hex(4)}-owner", domain_id="default")
        made["projects"].append(other)

        def upload(conn, name, **kw):
            # not named popek-<8 hex>-…: pick_image passes over another run's images by that name
            made["images"].append(conn.image.create_image(name=f"hA6 {proj.name[6:14]} {name}", disk_format="raw",
                                                          container_format="bare", data=blob, **kw))
            return made["images"][-1]
        hidden = upload(member, "cachée")
        member.image.update_image(hidden, is_hidden=True)
        off = upload(member, "désactivée")
        admin.image.deactivate_image(off)
        community = upload(admin, "communautaire", visibility="community", owner_id=other.id)
        shared = upload(admin, "partagée", visibility="shared", owner_id=other.id)
        admin.image.add_member(shared, member_id=proj.id)
        ours = {i.id for i in (hidden, off, community, shared)}

        listed = compute.images(member)
        picked = compute.pick_image(member)
        client = openstack_client(tmp_path, entry, "image", "list", "-f", "value", "-c", "ID", "-c", "Status")
        assert client.returncode == 0, client.stderr[-600:]
        client_active = {line.split()[0] for line in client.stdout.splitlines() if line.endswith(" active")}
        assert not ours & {i.id for i in listed} and picked.id not in ours, [(i.name, i.status) for i in listed]
        assert {i.id for i in listed} <= client_active, (client.stdout, [i.name for i in listed])

        _, missing = names.resolve(member, {"Debian 13": off.name})
        assert any(f"l'image « {off.name} », nom donné pour « Debian 13 » est deactivated, pas active" in m
                   for m in missing), missing
        _, missing = names.resolve(member, {"Debian 13": hidden.name})
        assert not any("image" in m for m in missing), ("the client finds a hidden image by its name", missing)

        member.image.update_member(proj.id, shared, status="accepted")
        assert compute.pick_image(member).id == shared.id, "an accepted shared image of 1 KiB is the smallest"


def test_a_gpu_flavor_and_arm_or_uefi_images_smaller_than_the_rest_are_not_the_ones_booted(tmp_path):
    """A private flavor `resources:VGPU=1` of 1 vCPU / 256 MiB, and two copies of the cloud's smallest image
    tagged `architecture=aarch64` and `hw_firmware_type=uefi` whose names sort first: C21 boots a plain flavor
    and image and passes (before: « No valid host was found », and libvirt's « loader attribute 'secure' … »)."""
    with project("gabarits") as (admin, member, proj, entry, password, made):
        tag = proj.name[6:14]
        gpu = admin.compute.create_flavor(name=f"g1.gpu-{tag}", vcpus=1, ram=256, disk=1, is_public=False)
        made["flavors"].append(gpu)
        admin.compute.flavor_add_tenant_access(gpu, proj.id)
        admin.compute.create_flavor_extra_specs(gpu, {"resources:VGPU": "1"})
        source = compute.pick_image(member)
        data = member.image.download_image(source).content
        special = []
        for name, prop in ((f"aa {tag} arm64", {"architecture": "aarch64"}), (f"aa {tag} uefi", {"hw_firmware_type": "uefi"})):
            special.append(member.image.create_image(name=name, disk_format=source.disk_format, data=data,
                                                     container_format=source.container_format or "bare", **prop))
            made["images"].append(special[-1])
        image = compute.pick_image(member)
        assert image.id not in {i.id for i in special} and compute.pick_flavor(member, image).id != gpu.id
        proc, found, written = _run(tmp_path, entry, "--claim", "C21")
        seen = verdicts(found)
        assert proc.returncode == 0 and seen and all(s == "passed" for s, _ in seen.values()), seen
        assert '"--flavor": "' in written and f'"--flavor": "{gpu.name}"' not in written, "the GPU flavor was booted"
        assert not any(f'"--image": "{i.name}"' in written for i in special), "an arm or UEFI image was booted"


def test_a_user_named_in_french_with_a_password_full_of_shell_characters(tmp_path):
    """« popek-…-élève Zoé » on « popek-…-Étudiants 2026 », a password with quotes, `$HOME`, backticks, `;` and
    « é »: the openrc of C34 is sourced by bash, the client reads clouds.yaml; C33, C34, C35 RÉUSSI and the
    password written nowhere (hA6 live 19:44: 6 RÉUSSI of these, no leak)."""
    admin = connection.connect("popek-admin", {}, paths.embedded_clouds_yaml()).conn
    ident = admin.identity
    tag = secrets.token_hex(4)
    password = f"p@ss \"w'rd $HOME `id` é ; {secrets.token_hex(4)}"
    proj = ident.create_project(name=f"popek-{tag}-Étudiants 2026", domain_id="default")
    user = None
    try:
        user = ident.create_user(name=f"popek-{tag}-élève Zoé", domain_id="default", password=password,
                                 default_project_id=proj.id)
        ident.assign_project_role_to_user(proj, user, ident.find_role("member"))
        auth_url = yaml.safe_load(paths.embedded_clouds_yaml().read_text())["clouds"]["popek"]["auth"]["auth_url"]
        entry = {"auth": {"auth_url": auth_url, "username": user.name, "password": password, "project_name": proj.name,
                          "user_domain_name": "Default", "project_domain_name": "Default"},
                 "region_name": "RegionOne", "identity_api_version": 3}
        proc, found, written = _run(tmp_path, entry, "-n", "2", "--claim", "C33", "--claim", "C34", "--claim", "C35")
    finally:
        _remove(admin, proj, user)
    seen = verdicts(found)
    assert proc.returncode == 0 and len(seen) >= 4 and all(s == "passed" for s, _ in seen.values()), seen
    assert password not in written and password.rsplit(" ", 1)[1] not in written


def test_a_network_named_like_another_networks_id_is_taken_as_the_client_takes_it(tmp_path):
    """A network B named with network A's UUID: the `openstack` client takes A for that string (an id first,
    openstacksdk's find), and so does the course command's lookup (names.resolve): no reason, same network
    (hA6 live 19:39: both A)."""
    with project("uuid") as (admin, member, proj, entry, password, made):
        first = member.network.create_network(name=f"{proj.name} a")
        member.network.create_network(name=first.id)
        assert names.resolve(member, {"public": first.id})[1] == []
        assert names._find(member, "network", first.id).id == first.id
        shown = openstack_client(tmp_path, entry, "network", "show", first.id, "-f", "value", "-c", "id")
        assert shown.returncode == 0 and shown.stdout.strip() == first.id, shown.stderr[-600:]
