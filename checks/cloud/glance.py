"""What Glance serves of an image: its data, not only its record (C20, "an image is a template ready to
boot"). An image stays `active` in Glance's database when the file behind it is gone from the store; the
record alone would keep C20 RÉUSSI, and a compute node that has the image in its own cache still boots it,
so only reading the data tells. The first KiB is asked (a Range request; a Glance that ignores Range sends
the whole file, of which only the first chunk is read), and where the image's disk format opens with a
signature inside it (qcow2, vhdx, vdi), the data must carry it: bytes that are no image of the format Glance
records would not boot either. An image small enough (HASH_MAX_BYTES) is read whole and hashed: data that is
not what Glance recorded at upload (os_hash_value, else the MD5 checksum) is refused by any download that checks
its integrity, Nova's (glanceclient's `data`, which verifies os_hash_value) among them. A run reads whole at most
HASH_BUDGET_BYTES, smallest image first (the one compute.pick_image boots): a class project of thirty tiny images
keeps the KiB probe for the rest (data_problems). A stream that ends before the recorded size is read once more,
then said as a short read, never as a hash mismatch."""
from __future__ import annotations

import hashlib
import re
from typing import Optional

#: Bytes read of each image's data: enough to prove the store has it, cheap on any cloud.
PROBE_BYTES = 1024

#: Images up to this size are read whole and their hash compared with Glance's record (a tiny guest image,
#: ~15 MiB here, costs a fraction of a second; a distribution's image of hundreds of MiB keeps the KiB probe).
HASH_MAX_BYTES = 32 << 20

#: Bytes read whole (to be hashed) by one data_problems() call, i.e. one run of C20, over all the images.
HASH_BUDGET_BYTES = 32 << 20


def hasher(algo: str):
    """A new hash object of `algo`, or None where this Python refuses it (unknown, or MD5 under FIPS): it only
    checks integrity, so it is asked with usedforsecurity=False where the Python knows that argument."""
    try:
        return hashlib.new(algo, usedforsecurity=False)
    except TypeError:
        try:
            return hashlib.new(algo)
        except ValueError:
            return None
    except ValueError:
        return None


def recorded_hash(image) -> Optional[tuple[str, str, str]]:
    """(algorithm, hex digest, Glance's field) of what Glance recorded of `image`'s data at upload: os_hash_algo
    and os_hash_value (multihash), else the MD5 `checksum`; None when neither is there or the algorithm is
    unknown here."""
    algo, value = getattr(image, "hash_algo", None), getattr(image, "hash_value", None)
    if algo and value and hasher(algo) is not None:
        return algo, value.lower(), "os_hash_value"
    checksum = getattr(image, "checksum", None)
    return ("md5", checksum.lower(), "checksum") if checksum and hasher("md5") is not None else None


def hash_mismatch(label: str, recorded: tuple[str, str, str], got: str, size: int) -> Optional[str]:
    """The French finding when the data read (`got`, its hex digest, `size` bytes) is not what Glance recorded
    (`recorded`, as recorded_hash gives it); None when they agree."""
    algo, want, field = recorded
    if got == want:
        return None
    return (f"{label} : ses données ({size} octets relus) ne sont pas celles que Glance a enregistrées au "
            f"téléversement ({algo} relu {got[:16]}…, enregistré {want[:16]}… dans {field}) : un téléchargement qui "
            f"vérifie l'intégrité, comme celui de Nova pour démarrer l'image, les refuse")


#: disk_format -> (offset, bytes) of the signature an image of that format opens with, within PROBE_BYTES
#: (qemu's block drivers probe the same: block/qcow2.c, vhdx.c, vdi.c). raw, iso and the kernel/ramdisk
#: formats have none there: only their data's presence is checked.
SIGNATURES = {"qcow2": (0, b"QFI\xfb"), "vhdx": (0, b"vhdxfile"), "vdi": (0x40, b"\x7f\x10\xda\xbe")}


class Refused(str):
    """data_problem()'s answer when Glance refuses this account the image's data (HTTP 403: its policy, e.g.
    `download_image` needs the member role and the account is a reader): nothing is known of the data."""


def data_problems(conn, images, budget: int = HASH_BUDGET_BYTES) -> list[Optional[str]]:
    """data_problem() of each of `images`, in their order; only the smallest ones, up to `budget` bytes in all,
    are read whole and hashed (the first the smallest, the image a run boots), the others get the KiB probe."""
    whole = set()
    for image in sorted(images, key=lambda i: getattr(i, "size", None) or 0):
        size = getattr(image, "size", None) or 0
        if 0 < size <= min(budget, HASH_MAX_BYTES) and recorded_hash(image):
            whole.add(image.id)
            budget -= size
    return [data_problem(conn, i, whole=i.id in whole) for i in images]


def data_problem(conn, image, length: int = PROBE_BYTES, whole: bool = True, again: bool = True) -> Optional[str]:
    """None when the first `length` bytes of `image`'s data come back from Glance, else what was seen, in
    French (the HTTP status and Glance's words, or the connection error); a `Refused` for an HTTP 403. With
    `whole`, an image up to HASH_MAX_BYTES is read whole and hashed; a short read is read once more (`again`)."""
    from keystoneauth1 import exceptions as ks
    from requests import exceptions as rq

    path = f"/images/{image.id}/file"
    label = f"l'image « {image.name} » ({image.id})"
    size = getattr(image, "size", None) or 0
    recorded = recorded_hash(image) if whole and 0 < size <= HASH_MAX_BYTES else None
    broken = None
    headers = {} if recorded else {"Range": f"bytes=0-{length - 1}"}
    try:
        answer = conn.image.get(path, headers=headers, stream=True, raise_exc=False)
    except (ks.ConnectFailure, ks.ConnectTimeout) as exc:
        return f"{label} : GET {path} sans réponse ({type(exc).__name__})"
    try:
        if answer.status_code >= 400:
            # Glance's 403 is an HTML page whose <title> repeats its <h1> ("403 Forbidden 403 Forbidden …")
            page = re.sub(r"(?is)<title>.*?</title>", " ", answer.text or "")
            words = " ".join(re.sub(r"<[^>]*>", " ", page).split())[:200]
            if answer.status_code == 403:
                return Refused(f"{label} : Glance refuse à ce compte la lecture de ses données (GET {path} : "
                               f"HTTP 403{', ' + words if words else ''})")
            return f"{label} : GET {path} répond HTTP {answer.status_code}" + (f" ({words})" if words else "")
        chunk = next(answer.iter_content(length), b"") if answer.status_code != 204 else b""
        if not chunk:
            return f"{label} : GET {path} répond HTTP {answer.status_code} sans aucune donnée"
        if recorded:
            digest, read = hasher(recorded[0]), len(chunk)
            digest.update(chunk)
            try:
                for block in answer.iter_content(1 << 20):
                    digest.update(block)
                    read += len(block)
            except (rq.RequestException, OSError) as exc:     # requests wraps urllib3's IncompleteRead/ProtocolError
                broken = type(exc).__name__
    finally:
        answer.close()
    if recorded and (broken or read < size):
        if again:
            return data_problem(conn, image, length, whole, again=False)
        return (f"{label} : la lecture de ses données (GET {path}) s'est arrêtée à {read} octets sur les {size} que "
                "Glance enregistre, deux fois" + (f" ({broken})" if broken else "") + " : données tronquées dans "
                "le magasin ou connexion coupée, leur hachage n'a pas pu être comparé")
    # data that is not even of its format says more than a hash that differs: that finding first
    fmt = (getattr(image, "disk_format", None) or "").lower()
    if fmt in SIGNATURES:
        at, magic = SIGNATURES[fmt]
        if chunk[at:at + len(magic)] != magic:
            return (f"{label} : ses données ne sont pas une image {fmt} comme Glance l'indique (pas de signature "
                    f"{magic!r} à l'octet {at} ; elles commencent par {chunk[:8].hex(' ')})")
    else:   # raw, iso…: no signature of their own, but data that bears another format's is not of theirs
        for other, (at, magic) in SIGNATURES.items():
            if chunk[at:at + len(magic)] == magic:
                return (f"{label} : ses données sont une image {other} (signature {magic!r} à l'octet {at}), pas "
                        f"{fmt or '(aucun format)'} comme Glance l'indique (disk_format) : Nova la refuse au démarrage "
                        f"(son inspecteur de format) ou la lit comme du {fmt or '?'}")
    if recorded:
        return hash_mismatch(label, recorded, digest.hexdigest(), read)
    return None
