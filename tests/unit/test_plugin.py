"""The plugin's mechanisms, run on small throw-away features with pytester (pure logic, no host probe)."""
import json
import textwrap

import pytest

FEATURE = textwrap.dedent("""\
    # language: fr
    Fonctionnalité: Essai
      @claim:C05
      Scénario: Réussit
        Quand je me connecte avec le compte "alice"
        Alors c'est noté

      @claim:C09 @needs:never-met
      Scénario: Ignoré faute de moyens
        Quand je me connecte avec le compte "alice"
        Alors c'est noté
    """)

STEPS = textwrap.dedent("""\
    import pytest
    from pytest_bdd import parsers, scenarios, then, when
    from popek.checks.needs import requirement
    from popek.checks.secrets import REDACT

    requirement("never-met")(lambda: "ce besoin n'est jamais satisfait (essai)")
    scenarios("essai.feature")

    @pytest.fixture
    def credentials():
        REDACT.add("{secret}")
        return {{"user": "alice", "password": "{secret}"}}

    @when(parsers.parse('je me connecte avec le compte "{{account}}"'), target_fixture="noted")
    def login(account, credentials, evidence):
        evidence.figure("longueur", len(credentials["password"]))
        evidence.text("journal", f"login {{account}} password={{credentials['password']}}")
        return credentials["user"]

    @then("c'est noté")
    def noted_ok(noted):
        assert noted
    """)


@pytest.fixture
def run(pytester):
    def run(secret="s3cr3t-pw", extra=()):
        pytester.makefile(".feature", essai=FEATURE)
        pytester.makepyfile(test_essai=STEPS.format(secret=secret))
        results = pytester.path / "allure"
        out = pytester.runpytest("-p", "no:cacheprovider", "--alluredir", str(results), *extra)
        run.files = {p.name: p.read_text() for p in results.iterdir()}
        return out, [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    return run


def test_claim_tags_become_markers_and_allure_labels(run):
    out, results = run()
    out.assert_outcomes(passed=1, skipped=1)
    labels = {r["name"]: [l["value"] for l in r["labels"] if l["name"] == "claim"] for r in results}
    assert labels == {"Réussit": ["C05"], "Ignoré faute de moyens": ["C09"]}


def test_an_unmet_need_is_a_skip_with_its_french_reason(run):
    out, results = run()
    skipped = next(r for r in results if r["status"] == "skipped")
    assert skipped["statusDetails"]["message"] == "never-met : ce besoin n'est jamais satisfait (essai)"
    assert not skipped["statusDetails"].get("trace")  # no stack trace for a skip
    assert [s["status"] for s in skipped["steps"]] == ["skipped", "skipped"]
    out.stdout.fnmatch_lines(["*C09  IGNORÉ*", "*raison : never-met : ce besoin*"])


def test_secrets_and_fixtures_stay_out_of_step_parameters(run):
    _, results = run(secret="hunter2-very-secret")
    assert any("journal" in json.dumps(r) for r in results)  # the attachment was written…
    for name, text in run.files.items():                      # …and no file holds the secret
        assert "hunter2-very-secret" not in text, name
    step_params = [p["name"] for r in results for s in r.get("steps", []) for p in s.get("parameters", [])]
    assert "evidence" not in step_params  # a fixture's repr never reaches the report


def test_claim_option_selects_scenarios(run):
    out, _ = run(extra=("--claim", "C05"))
    out.assert_outcomes(passed=1, deselected=1)


def test_unknown_claim_tag_is_a_collection_error(pytester):
    pytester.makefile(".feature", essai=FEATURE.replace("C05", "C77"))
    pytester.makepyfile(test_essai=STEPS.format(secret="x"))
    out = pytester.runpytest("-p", "no:cacheprovider")
    assert out.ret != 0
    out.stdout.fnmatch_lines(["*C77*"])


PHASES_FEATURE = textwrap.dedent("""\
    # language: fr
    Fonctionnalité: Phases
      @claim:C05
      Scénario: Réussit
        Quand tout va bien
        Alors c'est noté

      @claim:C09
      Scénario: Le nettoyage échoue au démontage
        Quand je crée une ressource que le démontage ne sait pas supprimer
        Alors c'est noté

      @claim:C09
      Scénario: Un autre réussit pour la même claim
        Quand tout va bien
        Alors c'est noté

      @claim:C05 @claim:C06 @needs:never-met
      Scénario: Ignoré faute de moyens
        Quand tout va bien
        Alors c'est noté
    """)

PHASES_STEPS = textwrap.dedent("""\
    import pytest
    from pytest_bdd import scenarios, then, when
    from popek.checks.needs import requirement

    requirement("never-met")(lambda: "ce besoin n'est jamais satisfait (essai)")
    scenarios("phases.feature")

    @pytest.fixture
    def ledger():
        book = []
        yield book
        assert not book, "nettoyage incomplet : " + ", ".join(book)  # like the cloud cleanup ledger

    @when("tout va bien", target_fixture="noted")
    def fine():
        return True

    @when("je crée une ressource que le démontage ne sait pas supprimer", target_fixture="noted")
    def leak(ledger):
        ledger.append("vm-1")
        return True

    @then("c'est noté")
    def noted_ok(noted):
        assert noted
    """)


def test_summary_counts_every_phase_through_claim_status(pytester):
    """A teardown error fails its claim even if another scenario of it passed; all-skipped is IGNORÉ."""
    pytester.makefile(".feature", phases=PHASES_FEATURE)
    pytester.makepyfile(test_phases=PHASES_STEPS)
    out = pytester.runpytest("-p", "no:cacheprovider")
    out.assert_outcomes(passed=3, skipped=1, errors=1)
    out.stdout.fnmatch_lines([
        "*verdict par claim du cours*",
        "C05  RÉUSSI   2 scénario(s)*",
        "C06  IGNORÉ   1 scénario(s)*",
        "*raison : never-met : ce besoin*",
        "C09  ÉCHEC    2 scénario(s)*",
    ])


RUN_CLEANUP_STEPS = textwrap.dedent("""\
    import pytest
    from pytest_bdd import scenarios, then, when
    from popek.checks.cloud.ledger import RunCleanupIncomplete
    scenarios("cleanup.feature")

    @pytest.fixture(scope="session")
    def run_ledger():
        yield []
        raise RunCleanupIncomplete("nettoyage incomplet des ressources partagées du run : server popek-x-shared-1 "
                                   "(abc): HttpException: 500 Placement")

    @when("j'utilise les ressources partagées du run", target_fixture="noted")
    def use(run_ledger):
        return True

    @then("c'est noté")
    def noted_ok(noted):
        assert noted
    """)

RUN_CLEANUP_FEATURE = textwrap.dedent("""\
    # language: fr
    Fonctionnalité: Nettoyage du run
      @claim:C05
      Scénario: Premier
        Quand j'utilise les ressources partagées du run
        Alors c'est noté

      @claim:C09
      Scénario: Dernier
        Quand j'utilise les ressources partagées du run
        Alors c'est noté
    """)


def test_the_runs_own_cleanup_failure_is_the_runs_not_the_last_scenarios(pytester):
    """The run-wide ledger fails its teardown (a deletion refused by a broken cloud): pytest attaches it to
    the last scenario. The run still fails (exit status, pytest's error), but C09, checked by that last
    scenario, keeps its own verdict; the summary says what the cleanup left; Allure keeps the scenario
    passed, with the cleanup in its message."""
    pytester.makefile(".feature", cleanup=RUN_CLEANUP_FEATURE)
    pytester.makepyfile(test_cleanup=RUN_CLEANUP_STEPS)
    results = pytester.path / "allure"
    out = pytester.runpytest("-p", "no:cacheprovider", "--alluredir", str(results))
    out.assert_outcomes(passed=2, errors=1)
    assert out.ret != 0
    out.stdout.fnmatch_lines([
        "*le nettoyage du run a échoué (sans effet sur les verdicts des scénarios)*",
        "*server popek-x-shared-1 (abc): HttpException: 500 Placement*",
        "*verdict par claim du cours*",
        "C05  RÉUSSI*",
        "C09  RÉUSSI*",
    ])
    last = next(json.loads(p.read_text()) for p in results.glob("*-result.json")
                if json.loads(p.read_text())["name"] == "Dernier")
    assert last["status"] == "passed"
    assert "le nettoyage du run a échoué" in last["statusDetails"]["message"]


def test_scenario_statuses_cover_every_phase():
    """An error in setup or teardown fails the scenario; a skip at setup skips it; a passed call passes."""
    from popek.plugin import scenario_statuses

    def report(nodeid, when, outcome, longrepr=None):
        return pytest.TestReport(nodeid, ("f.py", 1, nodeid), {}, outcome, longrepr, when,
                                 user_properties=[("claims", "C05")])

    skip = ("f.py", 1, "Skipped: pas ici")
    stats = {
        "passed": [report("ok", "setup", "passed"), report("ok", "call", "passed"), report("ok", "teardown", "passed"),
                   report("td", "setup", "passed"), report("td", "call", "passed"),
                   report("su", "teardown", "passed")],
        "error": [report("td", "teardown", "failed", "boom"), report("su", "setup", "failed", "boom")],
        "skipped": [report("sk", "setup", "skipped", skip)],
    }
    got = {nodeid: status for nodeid, (status, _, _) in scenario_statuses(stats).items()}
    assert got == {"ok": "passed", "td": "failed", "su": "failed", "sk": "skipped"}
    assert scenario_statuses(stats)["sk"][2] == {"pas ici"}


def test_an_interruption_on_an_instruction_without_a_line_is_still_reported():
    """CPython 3.11 gives tb_lineno None to a frame interrupted on an instruction that maps to no line
    (SIGTERM landing in urllib's getproxies_environment, measured); pytest's terminal reporter then failed
    formatting the interruption with TypeError. popek's keyboard-interrupt hook numbers such entries first."""
    import collections
    import types

    from popek import plugin

    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        real, value = exc.__traceback__, exc
    Entry = collections.namedtuple("Entry", "tb_next tb_frame tb_lasti tb_lineno")  # a real tb cannot say None
    lineless = Entry(None, real.tb_frame, real.tb_lasti, None)

    ok = pytest.ExceptionInfo.from_exc_info((KeyboardInterrupt, value, real))

    def interrupted():  # pytest's ExceptionInfo of that interruption, as its terminal reporter gets it
        info = pytest.ExceptionInfo.from_exc_info((KeyboardInterrupt, value, lineless))
        info.traceback = type(ok.traceback)([type(ok.traceback[0])(lineless)])
        return info

    with pytest.raises(TypeError):
        interrupted().getrepr(funcargs=True)  # what pytest's terminal reporter met

    info = interrupted()
    plugin.pytest_keyboard_interrupt(info)
    assert isinstance(info.value.__traceback__, types.TracebackType)
    assert info.traceback[0].lineno == real.tb_frame.f_code.co_firstlineno - 1
    assert "KeyboardInterrupt" in str(info.getrepr(funcargs=True))
    assert plugin.numbered_traceback(real) is real  # an ordinary traceback is left as it is
