"""C20 reads each active image's data, not only its record: an image whose file is gone from Glance's
store is not ready to boot (forged answers of Glance; the live fault moved the tiny image's file aside)."""
from types import SimpleNamespace as NS

from keystoneauth1 import exceptions as ks

from popek.checks.cloud import glance

IMAGE = NS(id="90ffa547", name="popek-tiny")


class Answer:
    def __init__(self, status, body=b"", text=""):
        self.status_code, self.body, self.text, self.closed = status, body, text, False

    def iter_content(self, size):
        return iter([self.body[:size]] if self.body else [])

    def close(self):
        self.closed = True


def conn_answering(answer):
    seen = {}

    def get(path, headers=None, stream=False, raise_exc=True):
        seen.update(path=path, headers=headers)
        if isinstance(answer, Exception):
            raise answer
        return answer
    return NS(image=NS(get=get)), seen


def test_readable_data_is_no_problem_and_only_the_first_kib_is_asked():
    answer = Answer(206, b"\x1f\x8b" * 600)
    conn, seen = conn_answering(answer)
    assert glance.data_problem(conn, IMAGE) is None
    assert seen == {"path": "/images/90ffa547/file", "headers": {"Range": "bytes=0-1023"}} and answer.closed


def test_a_glance_that_ignores_range_is_read_one_chunk():
    assert glance.data_problem(conn_answering(Answer(200, b"x" * 5000))[0], IMAGE) is None


def test_an_image_whose_file_is_gone_is_named_with_glances_answer():
    said = glance.data_problem(conn_answering(Answer(404, text="Image data not found"))[0], IMAGE)
    assert said == "l'image « popek-tiny » (90ffa547) : GET /images/90ffa547/file répond HTTP 404 (Image data not found)"


def test_no_data_and_no_answer_are_problems():
    assert "sans aucune donnée" in glance.data_problem(conn_answering(Answer(204))[0], IMAGE)
    assert "sans aucune donnée" in glance.data_problem(conn_answering(Answer(200, b""))[0], IMAGE)
    said = glance.data_problem(conn_answering(ks.ConnectFailure("refused"))[0], IMAGE)
    assert "sans réponse (ConnectFailure)" in said


def test_data_that_is_not_the_recorded_format_is_a_problem():
    """A qcow2 image must open with QFI\\xfb, a vdi with its magic at 0x40; raw data is never judged."""
    qcow2 = NS(id="1", name="deb", disk_format="qcow2")
    assert glance.data_problem(conn_answering(Answer(206, b"QFI\xfb" + b"\0" * 1020))[0], qcow2) is None
    said = glance.data_problem(conn_answering(Answer(206, b"\0" * 1024))[0], qcow2)
    assert said == ("l'image « deb » (1) : ses données ne sont pas une image qcow2 comme Glance l'indique (pas de "
                    "signature b'QFI\\xfb' à l'octet 0 ; elles commencent par 00 00 00 00 00 00 00 00)")
    vdi = NS(id="2", name="v", disk_format="vdi")
    assert glance.data_problem(conn_answering(Answer(206, b"<<< x >>>".ljust(0x40, b" ") + b"\x7f\x10\xda\xbe"))[0], vdi) is None
    assert "pas une image vdi" in glance.data_problem(conn_answering(Answer(206, b"QFI\xfb" * 40))[0], vdi)
    raw = NS(id="3", name="r", disk_format="raw")
    assert glance.data_problem(conn_answering(Answer(206, b"\0" * 1024))[0], raw) is None


def test_a_403_is_a_refusal_to_this_account_not_a_broken_image():
    """Glance's default `download_image` policy wants the member role: a reader-only account gets 403 for
    every image, which says nothing of the data (it was a false ÉCHEC 'pas prête à démarrer')."""
    said = glance.data_problem(conn_answering(Answer(403, text="<html> <head> <title>403 Forbidden</title> </head> <body> <h1>403 Forbidden</h1> You are not authorized"))[0], IMAGE)
    assert isinstance(said, glance.Refused) and "HTTP 403, 403 Forbidden You are" in said    # the <title> not repeated
    assert "refuse à ce compte" in said and "<" not in said
    assert not isinstance(glance.data_problem(conn_answering(Answer(404))[0], IMAGE), glance.Refused)


def _step(roles, answers):
    """C20's step over images whose data Glance answers with `answers` (one Answer per image)."""
    import pytest
    from popek.steps import cloud_compute

    images = [NS(id=str(n), name=f"im{n}", disk_format="raw") for n in range(len(answers))]
    by_path = {f"/images/{n}/file": a for n, a in enumerate(answers)}
    conn = NS(image=NS(get=lambda path, **kw: by_path[path]))
    figures = {}
    evidence = NS(figure=lambda k, v: figures.update({k: v}))
    try:
        cloud_compute.image_data_readable(NS(roles=roles), conn, images, evidence)
    except pytest.skip.Exception as exc:
        return "IGNORÉ", str(exc), figures
    except AssertionError as exc:
        return "ÉCHEC", str(exc), figures
    return "RÉUSSI", "", figures


FORBIDDEN = "<html><h1>403 Forbidden</h1> You are not authorized</html>"


def test_a_403_to_a_member_is_a_failure_naming_the_policy_and_to_a_reader_not_checked():
    """F1: Glance's default download_image lets a member read every image it lists; a 403 to a member is a
    policy or a fault (ÉCHEC), only a reader-only account's 403 leaves the data unchecked (IGNORÉ)."""
    verdict, said, _ = _step(["member", "reader"], [Answer(403, text=FORBIDDEN), Answer(403, text=FORBIDDEN)])
    assert verdict == "ÉCHEC" and "politique download_image" in said and "membre du projet" in said
    verdict, said, _ = _step(["reader"], [Answer(403, text=FORBIDDEN), Answer(403, text=FORBIDDEN)])
    assert verdict == "IGNORÉ" and "2/2 image(s)" in said and "rôle reader" in said and "autre" not in said


def test_a_reader_refused_some_images_is_not_a_pass_over_them():
    verdict, said, figures = _step(["reader"], [Answer(206, b"x" * 1024), Answer(403, text=FORBIDDEN)])
    assert verdict == "IGNORÉ" and "1/2 image(s)" in said and "les 1 autre(s) se relisent" in said
    assert figures["images dont les données se relisent"] == "1/2 (1 refusée(s) à ce compte)"
    assert _step(["reader"], [Answer(206, b"x" * 1024)])[0] == "RÉUSSI"
    verdict, said, _ = _step(["reader"], [Answer(404, text="gone"), Answer(403, text=FORBIDDEN)])
    assert verdict == "ÉCHEC" and "HTTP 404" in said      # a broken image is found whatever the rest
