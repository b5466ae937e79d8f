"""C20: an image whose data bears another format's signature than its recorded disk_format (a qcow2 recorded as raw in
Glance's database: hF2's fault, 2026-12-07) is not ready to boot: Nova's format inspector refuses it, an older Nova
reads the qcow2 header as a raw disk. Its hash still matches: before, C20 said nothing. Forged answers."""
import hashlib

from popek.checks.cloud import glance

from test_diagnosis_image_hash import DATA, Answer, conn_answering, image


def recorded_as(fmt, data=DATA):
    """What C20 says of an image recorded with disk_format `fmt` whose data (hash matching) is `data`."""
    conn, _ = conn_answering(Answer(200, data))
    found = image(hash_algo="sha512", hash_value=hashlib.sha512(data).hexdigest(), checksum=None)
    found.disk_format, found.size = fmt, len(data)
    return glance.data_problem(conn, found)


def test_a_qcow2_recorded_as_raw_is_named():
    said = recorded_as("raw")
    assert said == ("l'image « popek-tiny » (i1) : ses données sont une image qcow2 (signature b'QFI\\xfb' à l'octet 0), "
                    "pas raw comme Glance l'indique (disk_format) : Nova la refuse au démarrage (son inspecteur de "
                    "format) ou la lit comme du raw")
    assert "pas iso comme Glance l'indique" in recorded_as("iso")


def test_raw_data_recorded_as_raw_or_a_qcow2_as_qcow2_is_fine():
    assert recorded_as("raw", b"\xeb\x63\x90" + bytes(4093)) is None   # a disk's boot sector
    assert recorded_as("qcow2") is None
