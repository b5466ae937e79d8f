"""C20: an image small enough is read whole and its hash compared with what Glance recorded at upload
(glance.data_problem); data that is not what Glance recorded is refused by Nova's download. Forged answers."""
import hashlib
from types import SimpleNamespace as NS

from popek.checks.cloud import glance

DATA = b"QFI\xfb" + bytes(range(256)) * 40


class Answer:
    def __init__(self, status, body):
        self.status_code, self.body, self.text, self.closed = status, body, "", False
        self.at = 0

    def iter_content(self, size):      # one stream, whichever generator reads it (as requests' raw stream)
        while self.at < len(self.body):
            block = self.body[self.at:self.at + size]
            self.at += len(block)
            yield block

    def close(self):
        self.closed = True


def conn_answering(answer):
    seen = {}

    def get(path, headers=None, stream=False, raise_exc=True):
        seen.update(path=path, headers=headers)
        return answer
    return NS(image=NS(get=get)), seen


def image(**fields):
    return NS(id="i1", name="popek-tiny", disk_format="qcow2", size=len(DATA), **fields)


def test_a_small_image_whose_hash_matches_is_read_whole():
    conn, seen = conn_answering(Answer(200, DATA))
    good = image(hash_algo="sha512", hash_value=hashlib.sha512(DATA).hexdigest(), checksum=None)
    assert glance.data_problem(conn, good) is None
    assert seen["headers"] == {}


def test_a_recorded_hash_that_the_data_does_not_have_is_named():
    conn, _ = conn_answering(Answer(200, DATA))
    bad = image(hash_algo="sha512", hash_value="ab" * 64, checksum=hashlib.md5(DATA).hexdigest())
    said = glance.data_problem(conn, bad)
    assert said is not None and "ne sont pas celles que Glance a enregistrées" in said
    assert f"({len(DATA)} octets relus)" in said and "os_hash_value" in said and "abababab" in said


def test_the_md5_checksum_is_the_fallback():
    conn, _ = conn_answering(Answer(200, DATA))
    assert glance.data_problem(conn, image(hash_algo=None, hash_value=None,
                                           checksum=hashlib.md5(DATA).hexdigest())) is None
    conn, _ = conn_answering(Answer(200, DATA[:-1] + b"\0"))
    said = glance.data_problem(conn, image(hash_algo=None, hash_value=None, checksum=hashlib.md5(DATA).hexdigest()))
    assert said and "dans checksum" in said


def test_a_large_image_or_one_without_record_keeps_the_kib_probe():
    conn, seen = conn_answering(Answer(206, DATA[:1024]))
    big = NS(id="i2", name="debian", disk_format="qcow2", size=glance.HASH_MAX_BYTES + 1, hash_algo="sha512",
             hash_value="00" * 64, checksum=None)
    assert glance.data_problem(conn, big) is None and seen["headers"] == {"Range": "bytes=0-1023"}
    conn, seen = conn_answering(Answer(206, DATA[:1024]))
    assert glance.data_problem(conn, image(hash_algo="nosuchalgo", hash_value="00", checksum=None)) is None
    assert seen["headers"] == {"Range": "bytes=0-1023"}
