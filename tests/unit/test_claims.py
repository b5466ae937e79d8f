"""The claim registry, and every id named by a scenario or a question is one of the course's."""
import textwrap

import pytest

from popek import paths
from popek.checks import coverage
from popek.checks.claims import CLAIMS, UnknownClaim, check_ids
from popek.checks.quiz.bank import question_claims


def test_registry_has_the_39_claims_with_their_marks():
    assert list(CLAIMS) == [f"C{i:02d}" for i in range(1, 40)]
    assert all(c.how <= {"E", "Q"} and c.how for c in CLAIMS.values())
    assert CLAIMS["C03"].how == {"Q"} and CLAIMS["C05"].how == {"E", "Q"}


def test_every_scenario_names_known_claims_and_at_least_one():
    found = coverage.scenarios(paths.FEATURES_DIR)
    assert found, "no scenario found under features/"
    for sc in found:
        assert sc.claims, f"{sc.feature}:{sc.line} '{sc.name}' has no @claim tag"


def test_every_question_names_known_claims():
    for qid, ids in question_claims(paths.QUIZZES_DIR).items():
        assert ids, f"question {qid} has no claim"
        check_ids(ids, qid)


def test_an_unknown_claim_id_in_a_feature_is_an_error(tmp_path):
    (tmp_path / "x.feature").write_text(textwrap.dedent("""\
        # language: fr
        Fonctionnalité: f
          @claim:C99
          Scénario: s
            Quand rien
        """), encoding="utf-8")
    with pytest.raises(UnknownClaim, match="C99"):
        coverage.scenarios(tmp_path)


def test_a_malformed_feature_names_file_and_line(tmp_path):
    (tmp_path / "bad.feature").write_text("# language: fr\nFonctionnalité: f\n  Scénario: s\n    Quand x\n    @tag perdu\n", encoding="utf-8")
    with pytest.raises(coverage.FeatureError, match=r"(?s)bad\.feature.*\(5:5\)"):
        coverage.scenarios(tmp_path)


def test_every_claim_cites_a_heading_of_the_course():
    from test_quiz_bank_content import SECTIONS, _fold
    assert [c.id for c in CLAIMS.values() if _fold(c.section) not in SECTIONS] == []
