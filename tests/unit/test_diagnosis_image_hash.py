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


class Zeros:
    """A whole-file answer of `size` zero bytes, made as it is read (no 20 MiB held), counting what was read;
    `stop_at` ends the stream early (a store that serves less, a dropped connection), `raising` then raises."""
    def __init__(self, size, stop_at=None, raising=None):
        self.status_code, self.text, self.size, self.read = 200, "", size, 0
        self.stop_at, self.raising = size if stop_at is None else stop_at, raising

    def iter_content(self, size):
        while self.read < self.stop_at:
            block = b"\0" * min(size, self.stop_at - self.read)
            self.read += len(block)
            yield block
        if self.raising:
            raise self.raising

    def close(self):
        pass


def conn_of_zeros(**how):
    answers = []

    def get(path, headers=None, stream=False, raise_exc=True):
        answers.append(Zeros(1024 if headers else how["size"], *(() if headers else (how.get("stop_at"), how.get("raising")))))
        answers[-1].headers = headers
        return answers[-1]
    return NS(image=NS(get=get)), answers


def test_a_run_reads_whole_only_a_budget_of_bytes_smallest_image_first():
    """F7: a class project of 10 tiny images of 20 MiB: C20 read ~200 MiB per run; within the budget the smallest
    (the one pick_image boots) is hashed, the others keep the KiB probe."""
    size = 20 << 20
    want = hashlib.sha512(b"\0" * size).hexdigest()
    images = [NS(id=f"i{n}", name=f"cirros-{n}", disk_format="raw", size=size + (9 - n), hash_algo="sha512",
                 hash_value=want, checksum=None) for n in range(10)]
    conn, answers = conn_of_zeros(size=size)
    found = glance.data_problems(conn, images)
    assert len(found) == 10 and found[:9] == [None] * 9
    assert sum(a.read for a in answers) <= glance.HASH_BUDGET_BYTES + 10 * glance.PROBE_BYTES
    whole = [a for a in answers if not a.headers]
    assert len(whole) == 1 and answers.index(whole[0]) == 9      # cirros-9, the smallest, in the images' order
    assert found[9] is None        # its size is exactly the data's: read whole, the hash agrees


def test_a_short_read_is_said_as_such_after_one_more_try_not_as_a_hash_mismatch():
    size = 4096
    img = NS(id="i1", name="popek-tiny", disk_format="raw", size=size, hash_algo="sha512",
             hash_value=hashlib.sha512(b"\0" * size).hexdigest(), checksum=None)
    conn, answers = conn_of_zeros(size=size, stop_at=1000)
    said = glance.data_problem(conn, img)
    assert len(answers) == 2, "read once more before concluding"
    assert said and "ne sont pas celles" not in said and "1000 octets sur les 4096" in said


def test_a_stream_broken_mid_read_is_a_short_read_not_a_traceback():
    from requests.exceptions import ChunkedEncodingError
    size = 4096
    img = NS(id="i1", name="popek-tiny", disk_format="raw", size=size, hash_algo="sha512",
             hash_value=hashlib.sha512(b"\0" * size).hexdigest(), checksum=None)
    conn, answers = conn_of_zeros(size=size, stop_at=2048, raising=ChunkedEncodingError("IncompleteRead"))
    said = glance.data_problem(conn, img)
    assert said and "2048 octets sur les 4096" in said and "ChunkedEncodingError" in said and len(answers) == 2


def test_md5_refused_by_a_fips_python_keeps_the_kib_probe(monkeypatch):
    real = hashlib.new

    def fips(name, *args, **kwargs):
        if name.lower() == "md5":
            raise ValueError("[digital envelope routines] unsupported")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(glance.hashlib, "new", fips)
    conn, seen = conn_answering(Answer(206, DATA[:1024]))
    assert glance.data_problem(conn, image(hash_algo=None, hash_value=None, checksum="00" * 16)) is None
    assert seen["headers"] == {"Range": "bytes=0-1023"}


def test_zeros_where_a_qcow2_was_are_said_as_not_its_format_before_the_hash():
    # CI 2026-12-07 14:55 (test_faults_api::test_image_data_not_its_format_fails_c20): the qcow2's data replaced by
    # zeros of the same size was said only as a hash mismatch; that it is no qcow2 at all says more
    zeros = bytes(len(DATA))
    conn, _ = conn_answering(Answer(200, zeros))
    said = glance.data_problem(conn, image(hash_algo="sha512", hash_value=hashlib.sha512(DATA).hexdigest(), checksum=None))
    assert said and "pas une image qcow2" in said and "00 00 00 00" in said
