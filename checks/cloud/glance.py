"""What Glance serves of an image: its data, not only its record (C20, "an image is a template ready to
boot"). An image stays `active` in Glance's database when the file behind it is gone from the store; the
record alone would keep C20 RÉUSSI, and a compute node that has the image in its own cache still boots it,
so only reading the data tells. The first KiB is asked (a Range request; a Glance that ignores Range sends
the whole file, of which only the first chunk is read), and where the image's disk format opens with a
signature inside it (qcow2, vhdx, vdi), the data must carry it: bytes that are no image of the format Glance
records would not boot either."""
from __future__ import annotations

import re
from typing import Optional

#: Bytes read of each image's data: enough to prove the store has it, cheap on any cloud.
PROBE_BYTES = 1024

#: disk_format -> (offset, bytes) of the signature an image of that format opens with, within PROBE_BYTES
#: (qemu's block drivers probe the same: block/qcow2.c, vhdx.c, vdi.c). raw, iso and the kernel/ramdisk
#: formats have none there: only their data's presence is checked.
SIGNATURES = {"qcow2": (0, b"QFI\xfb"), "vhdx": (0, b"vhdxfile"), "vdi": (0x40, b"\x7f\x10\xda\xbe")}


class Refused(str):
    """data_problem()'s answer when Glance refuses this account the image's data (HTTP 403: its policy, e.g.
    `download_image` needs the member role and the account is a reader): nothing is known of the data."""


def data_problem(conn, image, length: int = PROBE_BYTES) -> Optional[str]:
    """None when the first `length` bytes of `image`'s data come back from Glance, else what was seen, in
    French (the HTTP status and Glance's words, or the connection error); a `Refused` for an HTTP 403."""
    from keystoneauth1 import exceptions as ks

    path = f"/images/{image.id}/file"
    label = f"l'image « {image.name} » ({image.id})"
    try:
        answer = conn.image.get(path, headers={"Range": f"bytes=0-{length - 1}"}, stream=True, raise_exc=False)
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
    finally:
        answer.close()
    fmt = (getattr(image, "disk_format", None) or "").lower()
    if fmt in SIGNATURES:
        at, magic = SIGNATURES[fmt]
        if chunk[at:at + len(magic)] != magic:
            return (f"{label} : ses données ne sont pas une image {fmt} comme Glance l'indique (pas de signature "
                    f"{magic!r} à l'octet {at} ; elles commencent par {chunk[:8].hex(' ')})")
    return None
