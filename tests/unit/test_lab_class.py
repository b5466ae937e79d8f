"""Class provisioning, the pure parts: the roster (bad lines reported with their number), --quota,
the credentials files (0600, the course's openrc), the class clouds.yaml merge."""
import os
import stat
import subprocess

import pytest
import yaml

from popek.checks.lab import classroom, roster
from popek.checks.lab.roster import Student


def test_roster_keeps_good_lines_and_reports_bad_ones_with_their_number():
    text = ("student_id,nom,prenom,email\n"
            "etu01,Dupont,Anne,anne@example.org\n"
            "\n"
            "# commentaire\n"
            "etu 02,Martin,Paul,paul@example.org\n"
            "etu03,Durand,Léa,\n"
            "etu01,Bis,Anne,\n"
            "etu04,X,Y,pas-une-adresse\n"
            "etu05,A,B,c@d,en-trop\n"
            '"etu06","Le Gall","Yann",yann@example.org\n')
    students, problems = roster.parse(text, "classe.csv")
    assert [s.id for s in students] == ["etu01", "etu03", "etu06"]
    assert students[1] == Student("etu03", "Durand", "Léa", "", 6)
    assert students[2].nom == "Le Gall"
    assert problems == [
        "classe.csv:5: identifiant d'étudiant invalide 'etu 02' (lettres, chiffres, . _ @ -, 55 caractères au plus)",
        "classe.csv:7: étudiant etu01 en double (déjà ligne 2)",
        "classe.csv:8: adresse électronique invalide 'pas-une-adresse' pour etu04",
        "classe.csv:9: 5 colonnes pour 4 dans l'en-tête"]


def test_roster_without_header_or_empty_is_refused(tmp_path):
    with pytest.raises(roster.RosterError, match=r"classe.csv:1: colonne manquante « student_id »"):
        roster.parse("etu01,Dupont\n", "classe.csv")
    with pytest.raises(roster.RosterError, match="vide"):
        roster.parse("\n# rien\n", "classe.csv")
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeffstudent_id,nom\netu01,Dupont\n".encode("utf-8"))   # spreadsheet export
    assert [s.id for s in roster.read(p)[0]] == ["etu01"]


# Moodle's participants download (user/action_redir.php: "First name", "Last name", then the site's identity
# fields), as a French and an English site write it.
MOODLE_FR = ('"Prénom","Nom","Adresse de courriel","Numéro d\'identification"\n'
             '"Zoé","Dupont","zoe.dupont@univ.example","21901234"\n'
             '"Yann","Le Gall","yann.legall@univ.example","21905678"\n')
MOODLE_EN = ("First name,Last name,Email address,ID number\n"
             "Zoé,Dupont,zoe.dupont@univ.example,21901234\n")


@pytest.mark.parametrize("text", [MOODLE_FR, MOODLE_EN, MOODLE_FR.replace(",", ";")],
                         ids=["fr", "en", "fr-semicolons"])
def test_a_moodle_participants_list_is_read_by_column_names(text):
    students, problems = roster.parse(text, "participants.csv")
    assert problems == []
    assert students[0] == Student("21901234", "Dupont", "Zoé", "zoe.dupont@univ.example", 2)


def test_a_moodle_list_without_id_number_uses_the_username():
    text = "First name,Last name,Username,Email address\nZoé,Dupont,zdupont,zoe@univ.example\n"
    assert [s.id for s in roster.parse(text, "p.csv")[0]] == ["zdupont"]


def test_a_moodle_list_without_any_id_column_names_the_missing_column():
    with pytest.raises(roster.RosterError) as exc:
        roster.parse('"Prénom","Nom","Adresse de courriel"\n"Zoé","Dupont","zoe@univ.example"\n', "p.csv")
    assert "Numéro d'identification" in str(exc.value) and "p.csv:1" in str(exc.value)


@pytest.mark.parametrize("bad", ["..", ".hidden", "a/b", "é", "x" * 56, "-rf"])
def test_ids_that_keystone_or_a_file_name_cannot_hold_are_refused_before_anything(bad):
    students, problems = roster.parse(f"student_id\n{bad}\nok1\n", "r.csv")
    assert [s.id for s in students] == ["ok1"] and len(problems) == 1 and "r.csv:2" in problems[0]


def test_quota_defaults_and_overrides():
    q = classroom.parse_quota("instances=3, ram=4096")
    assert q["instances"] == 3 and q["ram"] == 4096 and q["floating-ips"] == classroom.DEFAULT_QUOTA["floating-ips"]
    assert set(classroom.DEFAULT_QUOTA) == set(classroom.QUOTAS)
    for bad, words in (("vcpus=2", "NOM parmi"), ("instances=deux", "entier attendu"), ("instances", "NOM=ENTIER"),
                       ("cores=-5", ">= -1")):
        with pytest.raises(ValueError, match=words):
            classroom.parse_quota(bad)


SITE = {"auth_url": "http://127.0.0.1:5000/v3", "region_name": "RegionOne", "interface": "public",
        "domain_id": "default"}


def test_credentials_files_are_private_and_usable(tmp_path):
    student = Student("etu01", "Dupont", "Anne", "anne@example.org")
    entry = classroom.cloud_entry(SITE, "tp-etu01", "s3cr3t'pass", "pid1", "tp-etu01")
    files = classroom.write_student_files(tmp_path, student, entry)
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "etu01").stat().st_mode) == 0o700
    assert yaml.safe_load(files[0].read_text())["clouds"]["etu01"]["auth"]["project_id"] == "pid1"
    assert classroom.stored_password(tmp_path, student) == "s3cr3t'pass"
    # the openrc is valid shell and gives what the course lists: Keystone URL, login, password, project
    env = subprocess.run(["bash", "-c", f"source {files[1]} && env"], capture_output=True, text=True, check=True,
                         env={"PATH": os.environ["PATH"]}).stdout.splitlines()
    assert "OS_PASSWORD=s3cr3t'pass" in env and "OS_AUTH_URL=http://127.0.0.1:5000/v3" in env
    assert "OS_USERNAME=tp-etu01" in env and "OS_PROJECT_ID=pid1" in env


def test_an_interface_list_gives_the_openrc_its_first_interface(tmp_path):
    # clouds.yaml accepts `interface: [internal, public]` (openstacksdk tries them in order); OS_INTERFACE takes
    # one name. shlex.quote() of the list raised TypeError (hY4, 2026-12-07)
    student = Student("etu02", "Martin", "Paul", "paul@example.org")
    entry = classroom.cloud_entry({**SITE, "interface": ["internal", "public"]}, "tp-etu02", "pw", "pid2", "tp-etu02")
    rc = classroom.write_student_files(tmp_path, student, entry)[1]
    assert "export OS_INTERFACE=internal" in rc.read_text().splitlines()


def test_class_yaml_merges_entries_and_stays_private(tmp_path):
    a = classroom.cloud_entry(SITE, "tp-a", "pa", "p1", "tp-a")
    b = classroom.cloud_entry(SITE, "tp-b", "pb", "p2", "tp-b")
    path = classroom.write_class_yaml(tmp_path, {"a": a})
    path.chmod(0o644)
    classroom.write_class_yaml(tmp_path, {"b": b})
    assert sorted(yaml.safe_load(path.read_text())["clouds"]) == ["a", "b"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_teardown_description_names_everything_and_no_secret():
    plan = classroom.Plan("etu01", project_id="p", user_id="u",
                          resources=[("server", "mon-instance"), ("volume", "mon-volume")], keypairs=["ma-cle"])
    text = classroom.describe(plan, dry_run=True)
    assert text == ("etu01 : supprimerait : server mon-instance, volume mon-volume, keypair ma-cle, "
                    "l'utilisateur, le projet")
    assert classroom.describe(classroom.Plan("etu02", note="rien à supprimer (déjà fait)"), False) == \
        "etu02 : rien à supprimer (déjà fait)"
    assert classroom.TEARDOWN_ORDER[0] == "server" and "keypair" not in classroom.TEARDOWN_ORDER


def test_retry_only_transient_cloud_errors(monkeypatch):
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk_exc

    from popek.checks.lab import retry as retry_mod

    monkeypatch.setattr(retry_mod.time, "sleep", lambda s: None)
    assert retry_mod.transient(sdk_exc.HttpException("locked", http_status=500))
    assert retry_mod.transient(sdk_exc.ConflictException("port in use", http_status=409))
    assert not retry_mod.transient(sdk_exc.NotFoundException("gone", http_status=404))
    assert not retry_mod.transient(ks.Unauthorized())
    calls = []

    def flaky(n):
        calls.append(n)
        if len(calls) < 3:
            raise sdk_exc.HttpException("database is locked", http_status=500)
        return n * 2
    assert retry_mod.retry(flaky, 21) == 42 and len(calls) == 3
    with pytest.raises(sdk_exc.NotFoundException):
        retry_mod.retry(lambda: (_ for _ in ()).throw(sdk_exc.NotFoundException("x", http_status=404)))
