"""Block storage (Cinder volumes, C15, C23) and object storage (Swift over plain HTTP, C16)."""
from __future__ import annotations

import time

from popek.checks.cloud.waits import poll

#: Seconds a volume may stay in a transitional status (creating, attaching, detaching) before the embedded
#: cloud's own evidence is read: a healthy 1 GiB volume here is available in ~1.4 s, attached in ~2.8 s,
#: detached in ~1.6 s. A frozen cinder-volume leaves the volume "creating" for good and Cinder records no
#: error: without this, only openstacksdk's bare "Timeout waiting for … to transition" came, 120 s in.
VOLUME_GRACE = 20.0
#: The embedded cloud's services a volume's create / attach / detach waits for (what is named when frozen
#: or dead): Cinder's, and for an attachment Nova's compute side.
VOLUME_PATH = ("cinder-api", "cinder-scheduler", "cinder-volume", "rabbitmq", "mariadb", "RabbitMQ", "MariaDB")
ATTACH_PATH = VOLUME_PATH + ("nova-api", "nova-conductor", "nova-compute", "libvirtd")


def wait_volume(conn, volume, status: str, failures: tuple, timeout: float, doing: str, path=VOLUME_PATH):
    """Wait until `volume` has `status`; raise AssertionError (French) as soon as it has one of `failures`,
    or, VOLUME_GRACE s in, as soon as a service of the embedded cloud on its `path` is found frozen or dead
    (connection.embedded_trouble()), else at `timeout` with the status it stayed in."""
    from popek.checks.cloud import connection

    started = time.monotonic()
    seen = {"volume": volume, "finding": None, "looked": 0.0}

    def fetch():
        current = conn.block_storage.get_volume(volume.id)
        seen["volume"] = current
        took = time.monotonic() - started
        if current.status != status and took >= VOLUME_GRACE and time.monotonic() - seen["looked"] >= 5:
            seen["looked"] = time.monotonic()
            trouble = [t for t in connection.embedded_trouble() if any(p in t for p in path)]
            if trouble:
                seen["finding"] = (f"le volume {volume.name} reste « {current.status} » depuis {took:.0f} s ({doing}) ; "
                                   f"sur le cloud embarqué : {' ; '.join(trouble)}")
        return current

    last = poll(fetch, lambda v: v.status == status or v.status in failures or seen["finding"] is not None,
                timeout, 1) or seen["volume"]
    if seen["finding"]:
        raise AssertionError(seen["finding"])
    if last.status in failures:
        said = cinder_messages(conn, volume.id)
        raise AssertionError(f"le volume {volume.name} est passé en « {last.status} » ({doing})"
                             + (f" ; Cinder dit (openstack volume message list) : {' ; '.join(said)}" if said else ""))
    if last.status != status:
        raise AssertionError(f"le volume {volume.name} n'est pas « {status} » après {timeout:.0f} s ({doing}) : "
                             f"il reste « {last.status} » ; les services de Cinder (openstack volume service list) "
                             "ou, pour un attachement, nova-compute n'ont pas fini")
    return last


#: Cinder's messages API (user messages, what Cinder tells the project why an operation failed) needs 3.3.
MESSAGES_MICROVERSION = "3.3"


def volume_messages(answer: dict, volume_id: str) -> list[str]:
    """The user messages of Cinder's GET /messages answer that are about `volume_id`, oldest first, each
    "« user_message » (event_id, created_at)", repeats once."""
    out = []
    for m in sorted((answer or {}).get("messages") or [], key=lambda m: m.get("created_at") or ""):
        if m.get("resource_uuid") == volume_id and m.get("user_message"):
            line = f"« {m['user_message']} » ({m.get('event_id') or '?'}, {m.get('created_at') or '?'})"
            if line not in out:
                out.append(line)
    return out


def cinder_messages(conn, volume_id: str) -> list[str]:
    """What Cinder told the project about `volume_id` (volume_messages of its 50 newest user messages: e.g.
    « schedule allocate volume:Could not find any available weighted backend. » when no backend has room);
    [] when Cinder has no such API or does not answer (evidence only: never hides the failure itself)."""
    try:
        answer = conn.block_storage.get("/messages?sort=created_at:desc&limit=50",
                                        microversion=MESSAGES_MICROVERSION, raise_exc=False)
        return volume_messages(answer.json(), volume_id) if answer.status_code == 200 else []
    except Exception:  # evidence only
        return []


def create_volume(conn, ledger, size_gib: int = 1, timeout: float = 120):
    """A new volume of `size_gib` GiB, waited until available."""
    volume = ledger.create("volume", "vol", lambda name: conn.block_storage.create_volume(name=name, size=size_gib))
    return wait_volume(conn, volume, "available", ("error",), timeout, "création")


def attach(conn, ledger, server, volume, timeout: float = 120) -> dict:
    """Attach `volume` to `server` (recorded, so cleanup detaches it); waits until in-use.

    Returns {"device": the guest device Nova reports (e.g. /dev/vdb), "server": id, "volume": id}."""
    ledger.record("volume_attachment", f"{volume.name}@{server.name}", id=volume.id,
                  server_id=server.id, volume_id=volume.id)
    attachment = conn.compute.create_volume_attachment(server, volume.id)
    wait_volume(conn, volume, "in-use", ("error", "error_attaching"), timeout, f"attachement à {server.name}",
                ATTACH_PATH)
    return {"device": attachment.device, "server": server.id, "volume": volume.id}


def detach(conn, ledger, server, volume, timeout: float = 120) -> None:
    """Detach `volume` from `server` and wait until it is available again."""
    conn.compute.delete_volume_attachment(server, volume.id)
    wait_volume(conn, volume, "available", ("error", "error_detaching"), timeout, f"détachement de {server.name}",
                ATTACH_PATH)
    for entry in ledger.entries:
        if entry.kind == "volume_attachment" and entry.extra.get("server_id") == server.id \
                and entry.extra.get("volume_id") == volume.id:
            entry.done = True


def attachments(conn, volume) -> list[dict]:
    """Where Cinder says `volume` is attached: [{"server_id", "device"}]."""
    v = conn.block_storage.get_volume(volume.id)
    return [{"server_id": a.get("server_id"), "device": a.get("device")} for a in (v.attachments or [])]


def wait_attachment_listed(conn, server, volume_id: str, timeout: float = 30) -> list:
    """Nova's view: the server's volume attachments, once `volume_id` is among them."""
    return poll(lambda: list(conn.compute.volume_attachments(server)),
                lambda found: any(a.volume_id == volume_id for a in found), timeout, 0.5, final_look=True)


#: Shell run inside a guest: "NAME SECTORS" of the block device whose serial is SERIAL (virtio-blk shows the
#: first 20 characters of the Cinder volume id as /sys/block/vdX/serial), nothing while it is not there.
GUEST_FIND_DISK = ("for d in /sys/block/*; do [ \"$(cat $d/serial 2>/dev/null)\" = '{serial}' ] && "
                   "echo ${{d##*/}} $(cat $d/size); done; true")
#: Every block device of the guest: "NAME SECTORS SERIAL" (for a failure's message).
GUEST_LIST_DISKS = "for d in /sys/block/*; do echo ${d##*/} $(cat $d/size) $(cat $d/serial 2>/dev/null); done"
#: Write `blocks` × 64 KiB of random bytes at the start of /dev/DEV, flushed to the device, then hash what
#: the device holds there (read back from the device, not from memory of what was written).
GUEST_WRITE = ("dd if=/dev/urandom of=/dev/{dev} bs=65536 count={blocks} conv=fsync 2>/dev/null && sync && "
               "echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; dd if=/dev/{dev} bs=65536 count={blocks} 2>/dev/null "
               "| sha256sum")
GUEST_READ = "dd if=/dev/{dev} bs=65536 count={blocks} 2>/dev/null | sha256sum"


def guest_disk(run, volume_id: str, timeout: float = 60.0) -> tuple[str, int]:
    """The guest's block device for `volume_id`: (name, size in bytes), once the hot-plugged disk shows up.

    run: runs a shell command in the guest and returns its output (SSH). Raises AssertionError when the
    guest sees no disk with that serial within `timeout` s."""
    def found(out: list[str]) -> bool:
        return len(out) >= 2 and out[1].isdigit()

    out = poll(lambda: run(GUEST_FIND_DISK.format(serial=volume_id[:20])).split(), found, timeout, 2,
               final_look=True)
    if found(out):
        return out[0], int(out[1]) * 512
    seen = run(GUEST_LIST_DISKS).strip().replace("\n", " ; ")
    raise AssertionError(f"l'instance ne voit aucun disque de numéro de série {volume_id[:20]} "
                         f"({timeout:.0f} s après l'attachement) ; ses disques : {seen or 'aucun'}")


def _digest(out: str) -> str:
    token = (out.split() or [""])[0]
    if len(token) != 64:
        raise AssertionError(f"empreinte SHA-256 illisible depuis l'instance : {out[:200]!r}")
    return token


def write_random(run, device: str, mib: int = 1) -> str:
    """Write `mib` MiB of random bytes at the start of /dev/<device> from inside the guest; returns the
    SHA-256 of what the device then holds there."""
    return _digest(run(GUEST_WRITE.format(dev=device, blocks=16 * mib)))


def read_digest(run, device: str, mib: int = 1) -> str:
    """SHA-256 of the first `mib` MiB of /dev/<device>, read inside the guest."""
    return _digest(run(GUEST_READ.format(dev=device, blocks=16 * mib)))


class ObjectStore:
    """Swift spoken in plain HTTP with `requests` (the course: "accessible via une API HTTP").

    conn: the Connection (gives the token and the object-store endpoint)."""

    def __init__(self, conn):
        from popek.checks.secrets import REDACT

        from popek.checks.cloud.client import tls_options

        self.endpoint = conn.object_store.get_endpoint().rstrip("/")
        self.tls = tls_options(conn)    # the entry's cacert / verify: false, as the SDK's requests
        self.token = conn.session.get_token()
        REDACT.add(self.token)

    def _request(self, method: str, path: str, **kw):
        import requests

        headers = {"X-Auth-Token": self.token, **kw.pop("headers", {})}
        return requests.request(method, f"{self.endpoint}/{path}", headers=headers, timeout=30, **self.tls, **kw)

    def put_container(self, ledger, what: str = "bucket"):
        """PUT /<container>: returns (name, HTTP status)."""
        name = ledger.name(what)
        ledger.record("container", name, id=name)
        return name, self._request("PUT", name).status_code

    def put_object(self, container: str, name: str, data: bytes, content_type: str = "application/octet-stream"):
        """PUT /<container>/<object>: (HTTP status, ETag the server computed)."""
        r = self._request("PUT", f"{container}/{name}", data=data, headers={"Content-Type": content_type})
        return r.status_code, r.headers.get("Etag")

    def get_object(self, container: str, name: str):
        """GET /<container>/<object>: (HTTP status, body bytes)."""
        r = self._request("GET", f"{container}/{name}")
        return r.status_code, r.content

    def list_container(self, container: str) -> list[dict]:
        """GET /<container>?format=json: the objects it holds (name, bytes, hash)."""
        r = self._request("GET", container, params={"format": "json"})
        r.raise_for_status()
        return r.json()
