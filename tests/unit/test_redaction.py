"""Secrets a cloud run handles (password, token, SSH private key, URLs with credentials) never reach what
popek writes: the redactor learns them where they are loaded, and a whole results directory is grepped."""
import textwrap

from popek.checks.cloud import components, compute, connection
from popek.checks.secrets import REDACT

PASSWORD = "pw-Zq8-never-in-results"
TOKEN = "gAAAAABnever-in-results-0123456789abcdef0123456789"
PRIVATE_KEY, _ = compute.ssh_keypair()
KEY_BODY = PRIVATE_KEY.splitlines()[1]  # a line of the key's base64 body


def test_the_password_of_clouds_yaml_is_fed_to_the_redactor_when_loaded(tmp_path):
    (tmp_path / "clouds.yaml").write_text(textwrap.dedent(f"""\
        clouds:
          lab:
            auth: {{auth_url: "http://127.0.0.1:1/v3", username: u, password: "{PASSWORD}", project_name: p}}
        """))
    try:
        connection.connect("lab", {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml")}, tmp_path / "none.yaml",
                           api_timeout=2)
    except connection.CloudUnavailable as exc:
        assert PASSWORD not in str(exc)
    assert REDACT(f"auth with {PASSWORD}!") == "auth with ***!"


def test_a_generated_private_key_is_masked_and_the_public_one_is_not():
    private, public = compute.ssh_keypair()
    text = REDACT(f"key:\n{private}\npub: {public}")
    assert "PRIVATE KEY" not in text and private.splitlines()[1] not in text
    assert public in text


def test_database_and_bus_urls_lose_their_credentials(tmp_path):
    (tmp_path / "nova").mkdir()
    (tmp_path / "nova" / "nova.conf").write_text(
        "[DEFAULT]\ntransport_url = rabbit://guest:bus-secret-991@127.0.0.1:5672/\n"
        "[database]\nconnection = mysql+pymysql://nova:db-secret-992@localhost/nova?unix_socket=/run/m.sock\n")
    rows = components.wiring(tmp_path)
    assert {(r["rôle"], r["scheme"]) for r in rows} == {("bus de messages", "rabbit"), ("base de données", "mysql+pymysql")}
    assert "secret-99" not in repr(rows)


FEATURE = textwrap.dedent("""\
    # language: fr
    Fonctionnalité: Secrets
      @claim:C34
      Scénario: Un scénario qui manipule des secrets
        Étant donné des identifiants de cloud
        Quand je les utilise
        Alors rien ne fuit

      @claim:C34
      Scénario: Un scénario qui échoue avec un jeton en argument
        Étant donné des identifiants de cloud
        Quand une requête avec le jeton échoue
        Alors rien ne fuit
    """)

STEPS = textwrap.dedent(f"""\
    import logging
    import pytest
    from pytest_bdd import given, scenarios, then, when
    from popek.checks.cloud import compute
    from popek.checks.secrets import REDACT, RedactingFilter
    scenarios("secrets.feature")

    @pytest.fixture
    def creds():
        REDACT.add("{PASSWORD}")
        REDACT.add("{TOKEN}")
        return {{"password": "{PASSWORD}", "token": "{TOKEN}"}}

    @given("des identifiants de cloud", target_fixture="key")
    def given_creds(creds):
        REDACT.add({PRIVATE_KEY!r})
        return {PRIVATE_KEY!r}

    @when("je les utilise")
    def use(creds, key, evidence):
        log = logging.getLogger("popek.test")
        log.addFilter(RedactingFilter())
        log.warning("auth password=%s token %s", creds["password"], creds["token"])
        evidence.text("session", f"X-Auth-Token: {{creds['token']}}\\n{{key}}\\npassword {{creds['password']}}")
        evidence.json("auth", {{"password": creds["password"], "token": creds["token"]}})

    def send(headers, body):
        raise ConnectionError("refused")

    @when("une requête avec le jeton échoue")
    def fail(creds):
        send({{"X-Auth-Token": creds["token"]}}, body=creds["password"])

    @then("rien ne fuit")
    def nothing(creds):
        assert creds
    """)


def test_a_results_directory_holds_no_secret(pytester):
    pytester.makefile(".feature", secrets=FEATURE)
    pytester.makepyfile(test_secrets=STEPS)
    results = pytester.path / "results"
    out = pytester.runpytest("-p", "no:cacheprovider", "--alluredir", str(results / "allure-results"),
                             "--junitxml", str(results / "junit.xml"), "-o", "junit_logging=all", "--tb=long")
    out.assert_outcomes(passed=1, failed=1)
    assert PASSWORD not in out.stdout.str() and TOKEN not in out.stdout.str()
    out.stdout.fnmatch_lines(["*ConnectionError: refused*"])  # the failure itself is still told
    files = [p for p in results.rglob("*") if p.is_file()]
    assert len(files) >= 3  # result, attachments, junit
    for path in files:
        text = path.read_text(errors="replace")
        assert PASSWORD not in text, path
        assert TOKEN not in text, path
        assert KEY_BODY not in text, path


LEAKY_FEATURE = textwrap.dedent("""\
    # language: fr
    Fonctionnalité: Fuites
      @claim:C34
      Scénario: Une étape imprime, journalise et lève un secret
        Étant donné un secret connu du masqueur
        Quand une étape l'imprime, le journalise et le lève
        Alors rien ne fuit
    """)

LEAKY_STEPS = textwrap.dedent(f"""\
    import logging
    import sys
    import allure
    from pytest_bdd import given, scenarios, then, when
    from popek.checks.secrets import REDACT
    scenarios("leaks.feature")

    @given("un secret connu du masqueur")
    def known():
        REDACT.add("{PASSWORD}")

    @when("une étape l'imprime, le journalise et le lève")
    def leak(evidence):
        print("stdout: the password is {PASSWORD}")
        print("stderr: the token is {TOKEN}", file=sys.stderr)
        logging.getLogger("some.library").warning("connecting with %s", "{PASSWORD}")  # no filter of its own
        evidence.figure("mesure {PASSWORD}", 1.5, " s")
        allure.dynamic.parameter("mot de passe", "{PASSWORD}")
        with allure.step("une étape qui nomme {PASSWORD}"):
            pass
        allure.attach("raw attachment {PASSWORD}", name="brut {TOKEN}")
        raise RuntimeError("refused for {PASSWORD}")

    @then("rien ne fuit")
    def nothing():
        pass
    """)


def test_a_secret_printed_logged_and_raised_by_a_step_reaches_no_file_of_the_results(pytester):
    pytester.makefile(".feature", leaks=LEAKY_FEATURE)
    pytester.makepyfile(test_leaks=LEAKY_STEPS)
    results = pytester.path / "results"
    out = pytester.runpytest("-p", "no:cacheprovider", "--alluredir", str(results / "allure-results"),
                             "--junitxml", str(results / "junit.xml"), "-o", "junit_logging=all", "--tb=long",
                             "-o", "log_level=INFO", "--log-file", str(results / "pytest.log"))
    out.assert_outcomes(failed=1)
    assert PASSWORD not in out.stdout.str() and TOKEN not in out.stdout.str()
    out.stdout.fnmatch_lines(["*RuntimeError: refused for ****"])  # the failure itself is still told
    files = [p for p in results.rglob("*") if p.is_file()]
    texts = {p.name: p.read_text(errors="replace") for p in files}
    # what the step produced did reach the results, masked: stdout, stderr, log attachments and the trace
    joined = "\n".join(texts.values())
    for seen in ("stdout: the password is ***", "stderr: the token is ***", "connecting with ***",
                 "refused for ***", "raw attachment ***"):
        assert seen in joined, seen
    for name, text in texts.items():
        assert PASSWORD not in text, name
        assert TOKEN not in text, name


HOST_FEATURE = textwrap.dedent("""\
    # language: fr
    Fonctionnalité: Hôte
      @claim:C05
      Scénario: Une mesure de l'hôte échoue avec un secret en argument
        Quand une mesure de l'hôte échoue
    """)

HOST_STEPS = textwrap.dedent(f"""\
    from pytest_bdd import scenarios, when
    from popek.checks.secrets import REDACT
    scenarios("hote/mesure.feature")

    def measure(secret):
        raise RuntimeError("the probe failed with " + secret)

    @when("une mesure de l'hôte échoue")
    def fail():
        REDACT.add("{PASSWORD}")
        measure("{PASSWORD}")
    """)


def test_a_host_scenario_failure_is_redacted_without_the_cloud_steps(pytester):
    """The redaction is the plugin's, for every scenario: a host scenario's traceback (its frames' arguments)
    and junit.xml's message are masked even with the cloud step modules kept out of the run."""
    (pytester.path / "hote").mkdir()
    (pytester.path / "hote" / "mesure.feature").write_text(HOST_FEATURE)
    pytester.makepyfile(test_host_secret=HOST_STEPS)
    junit = pytester.path / "junit.xml"
    out = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:popek.steps.cloud_common", "--tb=long",
                             "--junitxml", str(junit))
    out.assert_outcomes(failed=1)
    assert PASSWORD not in out.stdout.str()
    out.stdout.fnmatch_lines(["*RuntimeError: the probe failed with ****"])
    text = junit.read_text()
    assert PASSWORD not in text
    assert 'message="RuntimeError: the probe failed with ***' in text, text


def test_a_redacted_failure_reads_the_same_everywhere_pytest_reads_it():
    """Terminal (toterminal), junit.xml and the short summary (reprcrash), pytest-xdist's workers (str)."""
    from popek.plugin import Crash, RedactedRepr

    REDACT.add(PASSWORD)

    class Longrepr:
        reprcrash = Crash("/x.py", 3, f"RuntimeError: refused for {PASSWORD}")

        def __str__(self):
            return f"frames with {PASSWORD}\nRuntimeError: refused for {PASSWORD}\n"

    seen = RedactedRepr(Longrepr())
    lines = []
    seen.toterminal(type("Writer", (), {"line": lambda self, text: lines.append(text)})())
    assert lines == ["frames with ***\nRuntimeError: refused for ***\n"]
    assert str(seen) == "frames with ***\nRuntimeError: refused for ***"
    assert (seen.reprcrash.path, seen.reprcrash.lineno, seen.reprcrash.message) == ("/x.py", 3, "RuntimeError: refused for ***")
    short = RedactedRepr(Longrepr(), "le cloud ne répond plus")
    assert str(short) == short.reprcrash.message == "le cloud ne répond plus"


# --- secrets at rest: the embedded cloud's files and command lines ----------------------------------

def test_a_config_file_holds_mode_0600_before_its_first_byte(tmp_path, monkeypatch):
    import os

    from popek.checks.localcloud import config

    modes = []
    real_write = os.write

    def spy(fd, data):
        modes.append(os.fstat(fd).st_mode & 0o777)
        return real_write(fd, data)

    old = tmp_path / "old.conf"
    old.write_text("was world-readable\n")
    old.chmod(0o644)
    monkeypatch.setattr(os, "write", spy)
    previous = os.umask(0)  # the most permissive umask: the mode must not come from it
    try:
        config.write_private(tmp_path / "new.conf", f"password = {PASSWORD}\n")
        config.write_private(old, f"password = {PASSWORD}\n")
    finally:
        os.umask(previous)
    assert modes == [0o600, 0o600]
    assert (tmp_path / "new.conf").stat().st_mode & 0o777 == 0o600 and old.stat().st_mode & 0o777 == 0o600
    assert old.read_text() == f"password = {PASSWORD}\n"


def test_no_setup_command_line_nor_setup_log_holds_a_password(tmp_path, monkeypatch):
    import subprocess

    from popek.checks.localcloud import bootstrap
    from popek.checks.localcloud.state import CloudState

    state = CloudState(tmp_path / "cloud")
    passwords = state.passwords()
    argvs = []
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: (argvs.append(argv), subprocess.CompletedProcess(argv, 0))[1])
    bootstrap.nova_db(state)
    bootstrap.keystone_db(state)
    assert any("map_cell0" in argv for argv in argvs)
    for argv in argvs:
        for value in passwords.values():
            assert value not in " ".join(argv), argv
    log = state.log("setup-nova")
    assert log.stat().st_mode & 0o777 == 0o600
    bootstrap.run(state, ["echo", f"--database_connection=mysql://nova:{passwords['mariadb_nova']}@h/db"], "nova")
    assert passwords["mariadb_nova"] not in log.read_text() and "mysql://nova:***@h/db" in log.read_text()
