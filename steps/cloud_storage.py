"""Glue for features/cloud/stockage.feature -> popek.checks.cloud.storage."""
import hashlib
import os
import shlex

import pytest
from pytest_bdd import given, parsers, then, when

from popek.checks.cloud import components, connection, network, storage, traffic
from popek.steps.cloud_common import shared_pair, uses_pair
from popek.steps.cloud_compute import room
from popek.steps.cloud_dataplane import run_fip_reached, run_guest_reached


@given("deux instances du run, joignables par SSH sur une IP flottante", target_fixture="servers")
@uses_pair
def two_servers(cloud, conn, ledger, shared, evidence):
    pair = shared_pair(shared, ledger)
    with room(conn):    # a cloud whose policy refuses the run a router (compute.Refused): IGNORÉ with its words
        routed, access = shared.routed(), shared.access()
    if routed is None:
        pytest.skip(f"pas d'IP flottante pour entrer dans les instances : {network.no_external_reason(conn)}")
    # the first through the run's floating IP, the second through one of this scenario's own
    first = run_fip_reached(cloud, conn, shared, access, pair[0], access.group, evidence)
    return _Pair(pair, [first, run_guest_reached(cloud, conn, ledger, routed, access, pair[1], evidence)])


class _Pair(list):
    """The run's two servers, with a root shell in each (`shells`, from their SSH access), the disk the
    first one sees and what was written."""

    def __init__(self, servers, guests):
        super().__init__(servers)
        self.shells = [_root_shell(guest) for guest in guests]
        self.disk, self.written = None, None


def _root_shell(guest):
    """Run a command as root in the guest (guest.ReachableGuest): as its user when that is root or has
    sudo, else as root (the embedded cloud's tiny image has no sudo and takes the key for root too)."""
    user = [guest.user]

    def run(command: str) -> str:
        wrapped = (f"if [ \"$(id -u)\" = 0 ]; then sh -c {shlex.quote(command)}; elif command -v sudo >/dev/null; "
                   f"then sudo -n sh -c {shlex.quote(command)}; else exit 97; fi")
        status, out = traffic.ssh_run(guest.address, user[0], guest.key, wrapped, timeout=60)
        if status == 97 and user[0] != "root":
            user[0] = "root"
            return run(command)
        return out
    return run


@given(parsers.parse("un volume de {size:d} Gio"), target_fixture="volume")
def one_volume(conn, ledger, size):
    with room(conn, volumes=1, gigabytes=size):     # the project's volume quota: IGNORÉ when it has no room
        return storage.create_volume(conn, ledger, size)


@when("j'attache le volume à la première instance", target_fixture="attached")
def attach_first(conn, ledger, servers, volume, evidence):
    attached = storage.attach(conn, ledger, servers[0], volume)
    evidence.figure("périphérique dans la 1re instance", attached["device"])
    return attached


@then("le volume est « in-use », vu comme le disque /dev/… de la première instance")
def in_use_first(conn, servers, volume, attached):
    assert conn.block_storage.get_volume(volume.id).status == "in-use"
    assert [a["server_id"] for a in storage.attachments(conn, volume)] == [servers[0].id]
    assert str(attached["device"]).startswith("/dev/"), f"périphérique {attached['device']!r}"
    seen = storage.wait_attachment_listed(conn, servers[0], volume.id)
    assert volume.id in [a.volume_id for a in seen], "Nova ne liste pas le volume parmi les disques de l'instance"


@then("la première instance voit un disque brut de la taille du volume")
def guest_sees_disk(servers, volume, evidence):
    name, size = storage.guest_disk(servers.shells[0], volume.id)
    servers.disk = name
    evidence.json("disque vu dans la 1re instance", {"périphérique": f"/dev/{name}", "taille (octets)": size})
    assert size == volume.size * 2**30, f"/dev/{name} fait {size} octets, le volume {volume.size} Gio"


@when(parsers.parse("j'écris depuis la première instance {mib:d} Mio de données aléatoires sur ce disque"))
def write_data(servers, volume, mib, evidence):
    servers.written = (storage.write_random(servers.shells[0], servers.disk, mib), mib)
    evidence.figure("SHA-256 écrit par la 1re instance", servers.written[0])


@when("je détache le volume")
def detach(conn, ledger, servers, volume):
    storage.detach(conn, ledger, servers[0], volume)


@then("le volume est de nouveau « available »")
def available(conn, volume):
    again = conn.block_storage.get_volume(volume.id)
    assert again.status == "available" and not again.attachments, (again.status, again.attachments)


@when("j'attache le volume à la seconde instance", target_fixture="attached")
def attach_second(conn, ledger, servers, volume):
    return storage.attach(conn, ledger, servers[1], volume)


@then("c'est le même volume, même identifiant et même taille, attaché à la seconde instance")
def same_volume(conn, servers, volume, attached, evidence):
    again = conn.block_storage.get_volume(volume.id)
    evidence.json("volume", {"id": again.id, "taille (Gio)": again.size, "statut": again.status,
                             "attachements": storage.attachments(conn, volume)})
    assert (again.id, again.size, again.name) == (volume.id, volume.size, volume.name)
    assert [a["server_id"] for a in storage.attachments(conn, volume)] == [servers[1].id]


@then("la seconde instance relit sur son disque les données écrites par la première")
def read_back(servers, volume, evidence):
    run = servers.shells[1]
    name, size = storage.guest_disk(run, volume.id)
    digest, mib = servers.written
    got = storage.read_digest(run, name, mib)
    evidence.json("relu par la 2de instance", {"périphérique": f"/dev/{name}", "taille (octets)": size,
                                              "SHA-256": got, "attendu": digest})
    assert got == digest, (f"la seconde instance relit sur /dev/{name} d'autres données que celles écrites par la "
                           f"première : SHA-256 {got[:16]}… au lieu de {digest[:16]}… ({mib} Mio)")
    assert size == volume.size * 2**30, f"/dev/{name} fait {size} octets dans la seconde instance"


@given("un conteneur créé par une requête HTTP PUT", target_fixture="bucket")
def container(conn, ledger):
    store = storage.ObjectStore(conn)
    name, status = store.put_container(ledger)
    assert status in (201, 202), f"PUT du conteneur : HTTP {status}" + components.behind_server_error(status, connection.embedded_trouble)
    return {"store": store, "name": name}


@when(parsers.parse("je dépose un objet de {size:d} octets aléatoires par HTTP PUT"), target_fixture="payload")
def put_object(bucket, size, evidence):
    data = os.urandom(size)
    status, etag = bucket["store"].put_object(bucket["name"], "objet.bin", data)
    evidence.figure("PUT objet : statut HTTP", status)
    assert status == 201, f"PUT de l'objet : HTTP {status}" + components.behind_server_error(status, connection.embedded_trouble)
    assert etag == hashlib.md5(data).hexdigest(), f"ETag {etag} ≠ MD5 local"
    return data


@then("un HTTP GET rend l'objet octet pour octet")
def get_object(bucket, payload):
    status, body = bucket["store"].get_object(bucket["name"], "objet.bin")
    assert status == 200, f"GET : HTTP {status}"
    assert body == payload, f"{len(body)} octets relus, différents des {len(payload)} déposés"


@then("le conteneur liste l'objet avec sa taille et son empreinte MD5")
def listed(bucket, payload, evidence):
    listing = bucket["store"].list_container(bucket["name"])
    evidence.json("contenu du conteneur", listing)
    assert [(o["name"], o["bytes"], o["hash"]) for o in listing] == \
        [("objet.bin", len(payload), hashlib.md5(payload).hexdigest())]
