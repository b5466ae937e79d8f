"""Glue for features/cloud/stockage.feature -> popek.checks.cloud.storage."""
import hashlib
import os

from pytest_bdd import given, parsers, then, when

from popek.checks.cloud import storage
from popek.steps.cloud_common import shared_pair


@given("deux instances du run", target_fixture="servers")
def two_servers(shared):
    return shared_pair(shared)


@given(parsers.parse("un volume de {size:d} Gio"), target_fixture="volume")
def one_volume(conn, ledger, size):
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


@given("un conteneur créé par une requête HTTP PUT", target_fixture="bucket")
def container(conn, ledger):
    store = storage.ObjectStore(conn)
    name, status = store.put_container(ledger)
    assert status in (201, 202), f"PUT du conteneur : HTTP {status}"
    return {"store": store, "name": name}


@when(parsers.parse("je dépose un objet de {size:d} octets aléatoires par HTTP PUT"), target_fixture="payload")
def put_object(bucket, size, evidence):
    data = os.urandom(size)
    status, etag = bucket["store"].put_object(bucket["name"], "objet.bin", data)
    evidence.figure("PUT objet : statut HTTP", status)
    assert status == 201, f"PUT de l'objet : HTTP {status}"
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
