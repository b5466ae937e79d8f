"""Lab definitions: the shipped TP loads; every mistake a teacher can make is reported with file:line."""
import textwrap

import pytest

from popek import paths
from popek.checks.lab.definition import LabError, find_lab, load_lab, load_labs

HEAD = 'lab: x\ntitle: "X"\ntasks:\n'
GOOD = """\
  - id: cle
    title: "Clé"
    points: 1
    check: keypair_exists
    feedback: "Importez une clé."
"""
SERVER = """\
  - id: vm
    title: "Instance"
    points: 4
    check: server_booted
    with: {flavor: small, image: "Debian 13", network: public}
    partial: {exists: 0.4, active: 0.15, flavor: 0.15, image: 0.15, network: 0.15}
    feedback: "Démarrez-la."
"""


def write(tmp_path, body, name="x.yaml", head=HEAD):
    p = tmp_path / name
    p.write_text(head + textwrap.dedent(body), encoding="utf-8")
    return p


def test_the_shipped_tp_loads_with_the_course_parameters():
    labs = load_labs(paths.QUIZZES_DIR / "labs")
    lab = labs["tp-openstack"]
    assert [t.id for t in lab.tasks] == ["paire-de-cles", "groupe-ssh", "instance", "volume", "ip-flottante", "objet"]
    vm = next(t for t in lab.tasks if t.id == "instance")
    assert (vm.params["flavor"], vm.params["image"], vm.params["network"]) == ("small", "Debian 13", "public")
    assert vm.partial and abs(sum(vm.partial.values()) - 1) < 1e-9
    sg = next(t for t in lab.tasks if t.id == "groupe-ssh")
    assert (sg.params["protocol"], sg.params["port"], sg.params["direction"]) == ("tcp", 22, "ingress")
    assert lab.max_score == sum(t.points for t in lab.tasks) == 15
    # the quiz banks' loader does not mistake a lab for a bank (labs live one folder down)
    assert find_lab("tp-openstack", paths.QUIZZES_DIR / "labs").id == "tp-openstack"


def test_a_good_lab_with_partial_credit_loads(tmp_path):
    lab = load_lab(write(tmp_path, GOOD + SERVER))
    assert [t.id for t in lab.tasks] == ["cle", "vm"]
    assert lab.tasks[0].partial == {}           # all-or-nothing
    assert lab.tasks[1].params["status"] == "ACTIVE"  # default filled in
    assert lab.tasks[1].criteria() == ["exists", "active", "flavor", "image", "network"]


@pytest.mark.parametrize("body, line, words", [
    (GOOD.replace("keypair_exists", "keypair_exist"), 4, "vérification inconnue 'keypair_exist'"),
    (GOOD + GOOD, 9, "tâche 'cle' en double (déjà ligne 4)"),
    (GOOD.replace("points: 1", "points: 0"), 4, "points : nombre positif"),
    (GOOD.replace('    feedback: "Importez une clé."\n', ""), 4, "feedback (obligatoire)"),
    (GOOD.replace("    title: \"Clé\"\n", ""), 4, "title"),
    (GOOD.replace("id: cle", "id: Clé"), 4, "id manquant ou invalide"),
    (GOOD + "    hint: x\n", 4, "champ(s) inconnu(s) hint"),
    (SERVER.replace("flavor: small,", "flavour: small,"), 4, "paramètre(s) inconnu(s) pour server_booted : flavour"),
    (SERVER.replace("{flavor: small,", "{keypair: oui, flavor: small,"), 4, "server_booted.keypair : bool attendu"),
    (SERVER.replace("exists: 0.4", "exists: 0.5"), 9, "la somme des parts doit valoir 1, trouvé 1.1"),
    (SERVER.replace("network: 0.15}", "reseau: 0.15}"), 9, "critère(s) inconnu(s) reseau ; critère(s) manquant(s) network"),
    (SERVER.replace("exists: 0.4", "exists: -0.4"), 9, "partial.exists : nombre positif ou nul"),
    ("  - id: cle\n    points: [1\n", 6, "YAML invalide"),   # the stream ends on line 6
])
def test_errors_name_the_file_and_line(tmp_path, body, line, words):
    path = write(tmp_path, body)
    with pytest.raises(LabError) as err:
        load_lab(path)
    assert err.value.line == line, str(err.value)
    assert words in str(err.value)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_top_level_errors(tmp_path):
    with pytest.raises(LabError, match="doit être le nom du fichier"):
        load_lab(write(tmp_path, GOOD, name="autre.yaml"))
    with pytest.raises(LabError, match="tasks : liste non vide"):
        load_lab(write(tmp_path, "", head='lab: x\ntitle: "X"\ntasks: []\n'))
    with pytest.raises(LabError, match="C99"):
        load_lab(write(tmp_path, GOOD, head='lab: x\ntitle: "X"\nclaims: [C99]\ntasks:\n'))
    with pytest.raises(LabError, match="TP inconnu « nope »"):
        find_lab("nope", paths.QUIZZES_DIR / "labs")
