"""A cloud that stops answering mid-scenario (its database frozen: every API times out) is told in one French
line in the HTML report's message too, not only on the terminal: the report's reader sees the component behind
it, not keystoneauth's "Request to … timed out" (MariaDB frozen, live: the Allure message of C21 was that bare line)."""
import json
import textwrap

FEATURE = textwrap.dedent("""\
    # language: fr
    Fonctionnalité: Nuage muet
      @claim:C21
      Scénario: Une requête au cloud expire
        Quand je demande la liste des gabarits
    """)

STEPS = textwrap.dedent("""\
    from keystoneauth1 import exceptions as ks
    from pytest_bdd import scenarios, when
    scenarios("muet.feature")

    @when("je demande la liste des gabarits")
    def ask():
        try:
            raise ks.ConnectTimeout("Request to http://127.0.0.1:8774/v2.1/flavors/detail timed out")
        except ks.ConnectTimeout as exc:
            raise RuntimeError("ressource partagée du run « pair » indisponible") from exc
    """)


def test_the_report_message_says_the_cloud_stopped_answering(pytester):
    pytester.makefile(".feature", muet=FEATURE)
    pytester.makepyfile(test_muet=STEPS)
    results = pytester.path / "results" / "allure-results"
    out = pytester.runpytest("-p", "no:cacheprovider", "--alluredir", str(results))
    out.assert_outcomes(failed=1)
    found = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert len(found) == 1
    message = found[0]["statusDetails"]["message"]
    assert message.startswith("le cloud ne répond plus pendant le scénario (ConnectTimeout)"), message
    assert "flavors/detail" in message
