"""popek's pytest plugin (entry point `pytest11: popek`).

One place for everything that turns the features into a run:
- registers every step module of `popek.steps` (steps are glue; checks hold the logic);
- maps Gherkin tags: `@claim:C05` -> marker `claim("C05")` + Allure label `claim=C05`;
  `@needs:kvm` -> marker `needs("kvm")`, evaluated before the scenario runs (unmet -> skip, reason);
- the `evidence` fixture: figures and attachments a scenario measured, for Allure and the terminal;
- keeps secrets out of what the run writes: Allure's results (a redacting writer), pytest's log handlers,
  every scenario's failure text and captured output (host and cloud alike: one report hook);
- prints the per-claim verdicts in French at the end.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import signal
import sys
import time
import types
from pathlib import Path

import pytest

from popek import paths
from popek.checks import claims as claims_mod
from popek.checks import coverage
from popek.checks import needs as needs_mod
from popek.checks.cloud import needs as cloud_needs
from popek.checks.cloud.connection import stopped_answering
from popek.checks.cloud.ledger import RunCleanupIncomplete, terminate_like_ctrl_c
from popek.checks.host import needs as host_needs
from popek.checks.secrets import REDACT

VERDICT_FR = {"passed": "RÉUSSI", "failed": "ÉCHEC", "skipped": "IGNORÉ"}
FIGURES_KEY = pytest.StashKey[dict]()
#: What the cloud fixture's sweep of earlier runs' orphans found: {"trouvés": [...], "problèmes": [...]}.
SWEEP_KEY = pytest.StashKey[dict]()
#: The pytest-xdist workers of a `popek run -n N` (xdist's WorkerController), to pass an interruption on to.
WORKERS_KEY = pytest.StashKey[list]()
#: Seconds an interrupted controller waits for its workers to finish their cloud cleanup (a worker's
#: ledger waits up to 60 s for each server, volume… to be gone).
WORKER_CLEANUP_WAIT = 300
#: What an xdist controller hands to each of its workers for the run's shared servers (RunShared): the
#: folder of their lock and state files, and the run's SSH key (in memory only).
SHARED_KEY = pytest.StashKey[dict]()
#: True when this session made SIGTERM interrupt like Ctrl-C (put back at its end: pytest may run in-process).
SIGTERM_KEY = pytest.StashKey[bool]()
#: Importing them registers the host's and the cloud's needs in needs_mod's table (it imports neither).
NEED_MODULES = (host_needs, cloud_needs)


def pytest_addoption(parser):
    group = parser.getgroup("popek")
    group.addoption("--os-cloud", dest="popek_os_cloud", default=None,
                    help="cloud of clouds.yaml to check (default: $OS_CLOUD, an openrc in the "
                         "environment, else popek's embedded cloud)")
    group.addoption("--popek-results", dest="popek_results", default=None,
                    help="results directory where figures.json is written (default: none)")
    group.addoption("--claim", dest="popek_claims", action="append", default=[],
                    help="only the scenarios tagged with this claim id (repeatable)")


def tell(config, line: str) -> None:
    """One line to the user at once, past pytest's output capture, on stderr (an xdist worker's stderr is
    the controller's: the line reaches the terminal or the CI log from every worker)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
        if reporter is not None:
            reporter.ensure_newline()  # not after a serial run's "steps/test_cloud.py .." on the same line
            reporter.flush()
        print(line, file=sys.stderr, flush=True)


def pytest_unconfigure(config):
    if config.stash.get(SIGTERM_KEY, False):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def popek_run(config) -> bool:
    """A session started by `popek run` (it always names its results folder), not popek loaded as a plugin
    into somebody's own pytest: only then does popek touch its workers' process groups and signals."""
    return config.getoption("popek_results", None) is not None


def step_modules():
    """Every module of popek.steps except the test modules that call scenarios()."""
    import popek.steps
    for info in pkgutil.walk_packages(popek.steps.__path__, "popek.steps."):
        if not info.name.rsplit(".", 1)[-1].startswith("test_"):
            yield info.name


def pytest_configure(config):
    config.addinivalue_line("markers", "claim(id): the course claim a scenario checks (from @claim:Cxx)")
    config.addinivalue_line("markers", "needs(name): what a scenario needs (from @needs:NAME)")
    # Library deprecation notices (openstacksdk's RemovedInSDK60Warning…) are for popek's developers,
    # not for a student reading a report: hundreds of them would bury the verdicts.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore::PendingDeprecationWarning")
    config.stash[FIGURES_KEY] = {}
    if popek_run(config):
        # SIGTERM (CI cancelling the job, `kill`) interrupts the run as Ctrl-C does: cleanup runs, and an
        # xdist controller passes the interruption on to its workers (pass_interruption_to_workers)
        config.stash[SIGTERM_KEY] = terminate_like_ctrl_c()
    if popek_run(config) and not hasattr(config, "workerinput"):
        config.pluginmanager.register(InterruptionRelay(), "popek-interruption-relay")
    config.pluginmanager.register(RunCleanupReport(), "popek-run-cleanup")
    if hasattr(config, "workerinput") and popek_run(config):
        # A worker of `popek run -n N` leads its own process group: a signal to the run's group (Ctrl-C in a
        # terminal, CI cancelling the job) reaches the controller alone, which passes it on to each worker
        # once (pass_interruption_to_workers): a second signal would break off the worker's cleanup.
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
    for name in step_modules():
        module = importlib.import_module(name)
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module, name)


@pytest.hookimpl(tryfirst=True)
def pytest_bdd_apply_tag(tag, function):
    if tag.startswith("claim:"):
        claim = tag.split(":", 1)[1]
        claims_mod.check_ids([claim], f"tag @{tag} de {getattr(function, '__name__', '?')}")
        pytest.mark.claim(claim)(function)
        pytest.mark.allure_label(claim, label_type="claim")(function)
        pytest.mark.allure_label(f"claim:{claim}", label_type="tag")(function)
        return True
    if tag.startswith("needs:"):
        need = tag.split(":", 1)[1]
        if need not in needs_mod.REQUIREMENTS:
            raise pytest.UsageError(f"tag @{tag}: besoin inconnu ; connus : {', '.join(sorted(needs_mod.REQUIREMENTS))}")
        pytest.mark.needs(need)(function)
        pytest.mark.allure_label(f"needs:{need}", label_type="tag")(function)
        return True
    return None


def pytest_collection_modifyitems(config, items):
    wanted = set(claims_mod.check_ids(config.getoption("popek_claims"), "--claim"))
    if not wanted:
        return
    keep, drop = [], []
    for item in items:
        (keep if wanted & set(claims_of(item)) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def claims_of(item) -> list[str]:
    return [m.args[0] for m in item.iter_markers("claim")]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.user_properties.append(("claims", ",".join(sorted(set(claims_of(item))))))


def skip_unmet_needs(request) -> None:
    """Skip the running scenario, with the French reason, if one of its needs is unmet.

    Called once the scenario has started (not at setup), so that Allure records the skipped scenario
    with its steps and reason; cloud needs get the `cloud` fixture's value.
    """
    # pytest-bdd keeps a scenario's tags in a set: the registry's order, not hash order, decides which
    # unmet need is reported (the same reason from run to run)
    order = list(needs_mod.REQUIREMENTS)
    broken = None   # a need that found the capability there but broken (an AssertionError): the scenario
    for name in sorted({m.args[0] for m in request.node.iter_markers("needs")}, key=order.index):
        args = (request.getfixturevalue("cloud"),) if needs_mod.takes_cloud(name) else ()
        try:
            reason = needs_mod.unmet(name, *args)
        except AssertionError as exc:   # fails with it, unless another need is truly missing (then skipped)
            broken = broken or exc
            continue
        if reason:
            pytest.skip(f"{name} : {reason}")
    if broken is not None:
        raise broken


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request, feature, scenario):
    """Group results in the report as Hôte / Cloud → feature, then skip if a need is unmet.

    trylast: Allure's listener has scheduled the test case by now, so a skip is recorded with its
    steps and reason."""
    import allure

    area = Path(feature.filename).parent.name
    allure.dynamic.parent_suite({"hote": "Hôte", "cloud": "Cloud"}.get(area, area))
    allure.dynamic.suite(feature.name)
    skip_unmet_needs(request)


def redacting_allure_writer(inner):
    """A writer of allure-results that masks secrets in everything it writes: results and containers
    (step names, parameters, figures, status messages and traces), text attachments (captured stdout,
    stderr and log, evidence) and attached text files. `inner` is Allure's own AllureFileLogger, whose
    directory is kept. Redacting here, where the bytes are written, covers what Allure's listener
    attaches before any pytest hook of ours could see it."""
    import io
    import os
    import uuid

    from allure_commons import hookimpl
    from allure_commons.logger import AllureFileLogger
    from attr import asdict

    from popek.checks.secrets import redact_bytes, redact_data

    class RedactingAllureWriter(AllureFileLogger):
        def __init__(self):
            self._report_dir = inner._report_dir

        def _report_item(self, item):
            data = redact_data(asdict(item, filter=lambda _, v: v or v is False), REDACT)
            path = self._report_dir / item.file_pattern.format(prefix=uuid.uuid4())
            with io.open(f"{path}.tmp", "w", encoding="utf8") as f:
                json.dump(data, f, ensure_ascii=False)
            os.replace(f"{path}.tmp", path)

        @hookimpl
        def report_attached_file(self, source, file_name):
            self.report_attached_data(Path(source).read_bytes(), file_name)

        @hookimpl
        def report_attached_data(self, body, file_name):
            body = body.encode("utf-8") if isinstance(body, str) else body
            path = self._report_dir / file_name
            Path(f"{path}.tmp").write_bytes(redact_bytes(body, REDACT))
            os.replace(f"{path}.tmp", path)

    return RedactingAllureWriter()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    """Secrets out of what the run writes: Allure's file writer is swapped for the redacting one (put
    back at the end, for allure-pytest-bdd's own cleanup), and every log handler of pytest's logging
    plugin (captured log, --log-file, live log) redacts the records it receives."""
    from popek.checks.secrets import RedactingFilter

    logging_plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    for name in ("caplog_handler", "report_handler", "log_file_handler", "log_cli_handler"):
        handler = getattr(logging_plugin, name, None)
        if handler is not None and not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(REDACT))
    try:
        import allure_commons
        from allure_commons.logger import AllureFileLogger
    except ImportError:  # pragma: no cover
        return
    for inner in [p for p in allure_commons.plugin_manager.get_plugins() if type(p) is AllureFileLogger]:
        name = allure_commons.plugin_manager.get_name(inner)
        allure_commons.plugin_manager.unregister(inner)
        writer = redacting_allure_writer(inner)
        allure_commons.plugin_manager.register(writer)

        def put_back(inner=inner, name=name, writer=writer):
            allure_commons.plugin_manager.unregister(writer)
            allure_commons.plugin_manager.register(inner, name)
        session.config.add_cleanup(put_back)


def allure_listener(config):
    """allure-pytest-bdd's listener (its lifecycle holds the results being written), or None."""
    return next((p for p in config.pluginmanager.get_plugins() if type(p).__name__ == "PytestBDDListener"), None)


def allure_test_result(item):
    """The Allure test result being written for `item`, or None (no Allure, or not one of its scenarios)."""
    listener = allure_listener(item.config)
    if listener is None or item.nodeid not in listener.nodeid_to_uuid:
        return None
    return listener.lifecycle._get_item(uuid=listener.nodeid_to_uuid[item.nodeid])


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_step_call(request, feature, scenario, step, step_func, step_func_args):
    """allure-pytest-bdd records every argument of a step function as a parameter, by repr(), fixtures
    included: keep only plain values parsed from the step text, redacted; drop fixtures (connections,
    credentials)."""
    listener = allure_listener(request.config)
    if listener is None:
        return
    from allure_pytest_bdd.steps import get_step_uuid
    result = listener.lifecycle._get_item(uuid=get_step_uuid(step))
    if result is None:
        return
    plain = {k for k, v in step_func_args.items() if isinstance(v, (str, int, float, bool))}
    kept = []
    for p in result.parameters:
        if p.name in plain:
            p.value = REDACT(p.value)
            kept.append(p)
    result.parameters = kept


class Crash:
    """The crash line of a failure (path, line, message): what junit.xml's message and the short summary show."""

    def __init__(self, path: str, lineno: int, message: str):
        self.path, self.lineno, self.message = path, lineno, message


class RedactedRepr:
    """A failure's text with secrets masked; keeps the crash line (junit.xml's message) redacted too.

    pytest reads a report's longrepr by duck typing: `toterminal` (terminal, longreprtext), `reprcrash`
    (junit.xml, short summary) and str() (what pytest-xdist's workers send)."""

    def __init__(self, longrepr, short: str | None = None):
        self.text = REDACT(short or str(longrepr))
        crash = getattr(longrepr, "reprcrash", None)
        if crash is not None:
            self.reprcrash = Crash(crash.path, crash.lineno, REDACT(short or crash.message))

    def toterminal(self, tw) -> None:
        tw.line(self.text)

    def __str__(self) -> str:
        return self.text.strip()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """What a scenario's report says, for every scenario (host and cloud):
    - pytest's long tracebacks print every frame's arguments: a token handed to a function (a request's
      headers) would reach the terminal, junit.xml and Allure's trace. Failure texts and captured output
      are redacted with what REDACT knows (loaded passwords and tokens, Fernet-looking strings, private
      keys); a cloud that stopped answering mid-scenario is told in one French line instead of its frames;
    - a skip is a verdict with a reason, not an error: Allure's trace and the "Skipped: " prefix go.
    tryfirst: runs after Allure's listener filled in its status details, which are redacted too."""
    outcome = yield
    report = outcome.get_result()
    if run_cleanup_message(report) is not None:
        report.outcome = "failed"   # RunCleanupReport showed it passed to Allure alone: the run did fail
    short = None
    if report.longrepr is not None and not report.skipped:
        short = shared_unavailable(call.excinfo and call.excinfo.value) or \
            stopped_answering(call.excinfo and call.excinfo.value) or \
            server_failed(call.excinfo and call.excinfo.value)
        report.longrepr = RedactedRepr(report.longrepr, short)
    report.sections = [(name, REDACT(text)) for name, text in report.sections]
    details = getattr(allure_test_result(item), "statusDetails", None)
    if details is None:
        return
    if short:  # the report's message too: the cloud that stopped answering, and what is behind it (MariaDB frozen…)
        details.message = short
    if report.skipped:
        details.trace = None
        details.message = (details.message or "").removeprefix("Skipped: ")
    details.message = REDACT(details.message) if details.message else details.message
    details.trace = REDACT(details.trace) if details.trace else details.trace


def server_failed(exc) -> str | None:
    """An API's 5xx that ended the scenario, with what is wrong inside the embedded cloud (MariaDB refusing writes, a
    service dead or frozen), when something is (components.server_failed); else None."""
    from popek.checks.cloud import components, connection

    return components.server_failed(exc, connection.embedded_trouble)


def shared_unavailable(exc) -> str | None:
    """The verdict's message when a scenario failed because a resource the run shares (its pair of
    instances, its routed network…) could not be made: that cause, as measured once for the run, is the
    whole report (the same in every worker; the frames of the scenario that met it first say nothing more)."""
    from popek.checks.cloud.shared import Unavailable

    return str(exc) if isinstance(exc, Unavailable) else None


#: user property of a teardown report whose failure is the run's cleanup (RunCleanupIncomplete), not its scenario's
RUN_CLEANUP = "popek-run-cleanup"


class RunCleanupReport:
    """The run-wide ledger's teardown (RunCleanupIncomplete) happens in whichever scenario ran last: the
    report keeps it a failure (pytest's error, exit status 1) but marks it RUN_CLEANUP, so that the
    per-claim verdicts leave that scenario's own outcome alone (scenario_statuses) and the summary tells it
    as the run's; Allure keeps the scenario's own status, with the cleanup said in its status message.
    trylast: the innermost makereport wrapper, so that Allure's listener, which writes the result after
    it, sees the teardown as passed; popek's outer wrapper (pytest_runtest_makereport) puts it back."""

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        error = call.excinfo.value if call.excinfo is not None else None
        if report.when != "teardown" or not report.failed or not isinstance(error, RunCleanupIncomplete):
            return
        message = REDACT(str(error))
        report.user_properties.append((RUN_CLEANUP, message))
        report.outcome = "passed"   # for Allure's listener only: restored by the outer wrapper
        result = allure_test_result(item)
        if result is not None:
            from allure_commons.model2 import StatusDetails
            note = f"le scénario s'est terminé ; ensuite, le nettoyage du run a échoué (sans effet sur ce verdict) : {message}"
            if result.statusDetails is None:
                result.statusDetails = StatusDetails(message=note)
            else:
                result.statusDetails.message = f"{result.statusDetails.message or ''}\n\n{note}".strip()


def run_cleanup_message(report) -> str | None:
    """What the run's own cleanup left, when `report` is the teardown RunCleanupReport marked; else None."""
    return next((message for key, message in getattr(report, "user_properties", []) if key == RUN_CLEANUP), None)


def run_cleanup_failures(stats) -> list[str]:
    """What the run's own cleanup left, from the teardown reports marked RUN_CLEANUP (one per worker)."""
    return [message for reports in stats.values() for report in reports if isinstance(report, pytest.TestReport)
            if (message := run_cleanup_message(report)) is not None]


class Evidence:
    """What a scenario measured: figures (shown in the terminal and Allure) and attachments."""

    def __init__(self, item):
        self.item = item

    def figure(self, key: str, value, unit: str = "") -> None:
        """Record one measured figure, e.g. figure("ratio syscall/call", 91.3, "×")."""
        key = REDACT(key)
        self.item.user_properties.append((f"figure:{key}", REDACT(f"{value:.4g}{unit}" if isinstance(value, float)
                                                                 else f"{value}{unit}")))
        self.item.config.stash[FIGURES_KEY].setdefault(self.item.nodeid, {})[key] = value
        try:
            import allure
            allure.dynamic.parameter(f"{key} ({unit})" if unit else key, value)
        except ImportError:  # pragma: no cover
            pass

    def terminal(self, title: str, text: str) -> None:
        """Show `text` as its own section at the end of the terminal output (and attach it)."""
        self.item.user_properties.append((f"terminal:{title}", REDACT(text)))
        self.text(title, text)

    def svg(self, name: str, svg: str) -> None:
        self._attach(svg, name, "SVG")

    def json(self, name: str, obj) -> None:
        self._attach(REDACT(json.dumps(obj, indent=2, ensure_ascii=False, default=str)), name, "JSON")

    def text(self, name: str, text: str) -> None:
        self._attach(REDACT(text), name, "TEXT")

    def png(self, name: str, path) -> None:
        try:
            import allure
            allure.attach.file(str(path), name=name, attachment_type=allure.attachment_type.PNG)
        except ImportError:  # pragma: no cover
            pass

    def _attach(self, body: str, name: str, kind: str) -> None:
        try:
            import allure
            allure.attach(body, name=name, attachment_type=getattr(allure.attachment_type, kind))
        except ImportError:  # pragma: no cover
            pass


@pytest.fixture
def evidence(request) -> Evidence:
    """Record figures and attachments for the report (see Evidence)."""
    return Evidence(request.node)


def pytest_sessionfinish(session):
    """figures.json in the results folder: every figure of the run. A pytest-xdist worker hands its own
    figures to the controller (workeroutput, merged in pytest_testnodedown), which writes the one file."""
    figures = session.config.stash.get(FIGURES_KEY, {})
    worker = getattr(session.config, "workeroutput", None)
    if worker is not None:
        worker["popek_figures"] = json.loads(json.dumps(figures, default=str))  # plain JSON values cross execnet
        return
    out = session.config.getoption("popek_results", None)
    if out and figures:
        results = paths.Results(Path(out))
        results.root.mkdir(parents=True, exist_ok=True)
        results.figures.write_text(REDACT(json.dumps(figures, indent=2, default=str)))


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo):
    """Before pytest's terminal reporter formats an interruption (Ctrl-C, SIGTERM): give a line number to
    each traceback entry that has none. A signal handled on an instruction CPython 3.11 maps to no line
    (tb_lineno None; measured on SIGTERM landing in urllib's getproxies_environment while a guest boot was
    polled) made that formatting raise TypeError: the run then ended in pytest's internal-error traceback
    instead of its cleanup summary."""
    fixed = numbered_traceback(excinfo.tb)
    if fixed is not excinfo.tb:
        excinfo.traceback = pytest.ExceptionInfo.from_exc_info((excinfo.type, excinfo.value, fixed)).traceback
        excinfo.value.__traceback__ = fixed


def numbered_traceback(tb):
    """`tb` itself when every entry has a line number; else a copy of the chain where an entry without
    one gets its function's first line."""
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    if all(e.tb_lineno is not None for e in entries):
        return entries[0] if entries else None
    fixed = None
    for e in reversed(entries):
        line = e.tb_lineno if e.tb_lineno is not None else e.tb_frame.f_code.co_firstlineno
        fixed = types.TracebackType(fixed, e.tb_frame, e.tb_lasti, line)
    return fixed


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """A pytest-xdist worker is done: its figures join the controller's (see pytest_sessionfinish)."""
    figures = getattr(node, "workeroutput", {}).get("popek_figures") or {}
    node.config.stash.setdefault(FIGURES_KEY, {}).update(figures)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """A pytest-xdist worker is being started: hand it what makes one set of shared servers serve every
    worker of the run (popek.checks.cloud.shared.RunShared): a private folder for their locks and state,
    removed when the controller ends (after its workers), and the run's SSH key, made here once and sent
    in memory over xdist's channel (workerinput), never written to disk."""
    config = node.config
    if SHARED_KEY not in config.stash:
        import shutil
        import tempfile

        from popek.checks.cloud.compute import ssh_keypair
        remove_dead_shared_folders(Path(tempfile.gettempdir()))
        folder = tempfile.mkdtemp(prefix=f"popek-shared-{os.getpid()}-")
        config.stash[SHARED_KEY] = {"dir": folder, "key": list(ssh_keypair())}
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    node.workerinput["popek_shared"] = config.stash[SHARED_KEY]


def remove_dead_shared_folders(tmp: Path) -> None:
    """Remove the `popek-shared-<pid>-…` folders of controllers that died without their cleanup
    (SIGKILL): empty but for locks and ids, never a key. A folder whose controller's pid lives is kept."""
    import shutil

    for folder in tmp.glob("popek-shared-*-*"):
        try:
            pid = int(folder.name.split("-")[2])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:         # alive, another user's
            continue


@pytest.hookimpl(optionalhook=True)
def pytest_testnodeready(node):
    """A pytest-xdist worker is up: remembered, to pass an interruption on to it."""
    node.config.stash.setdefault(WORKERS_KEY, []).append(node)


class InterruptionRelay:
    """Registered on the xdist controller of a `popek run` (pytest takes only `pytest_…` names as hooks)."""

    @pytest.hookimpl(tryfirst=True)     # before xdist's own session finish, which ends the workers
    def pytest_sessionfinish(self, session, exitstatus):
        pass_interruption_to_workers(session, exitstatus)


def pass_interruption_to_workers(session, exitstatus):
    """The xdist controller of a `popek run`, interrupted (Ctrl-C, SIGTERM): xdist alone would end its
    workers at once and kill them 10 s later, too soon for a worker to delete its servers and volumes. Pass
    the interruption on to each worker still running (SIGTERM to its process group, once: see
    pytest_configure) and wait until each has finished its session, cleanup included, at most
    WORKER_CLEANUP_WAIT seconds; a further Ctrl-C or SIGTERM meanwhile does not cut that wait short."""
    config = session.config
    nodes = config.stash.get(WORKERS_KEY, [])
    if exitstatus != pytest.ExitCode.INTERRUPTED or not nodes or not popek_run(config):
        return
    running = [n for n in nodes if not n.channel.isclosed()]
    tell(config, f"popek : interrompu ; {len(running)} worker(s) nettoient ce qu'ils ont créé dans le cloud…")
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for node in running:
            pid = getattr(getattr(getattr(node.gateway, "_io", None), "popen", None), "pid", None)  # execnet's Popen
            with contextlib.suppress(OSError, TypeError):
                if os.getpgid(pid) == pid:      # its own group (else it was signalled with the controller's)
                    os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + WORKER_CLEANUP_WAIT
        for node in running:
            with contextlib.suppress(Exception):    # closed with an error, or a timeout: xdist's teardown goes on
                node.channel.waitclose(max(0.0, deadline - time.monotonic()))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def scenario_statuses(stats) -> dict[str, tuple[str, set[str], set[str]]]:
    """nodeid -> (status, claims, skip reasons) of every scenario that ran, from the terminal's stats.

    Every phase counts: an error in setup or teardown (pytest's "error" reports: a fixture that broke,
    the cloud cleanup ledger's assertion…) fails the scenario as a failed call does; a skip in any phase
    (an unmet need, pytest.skip at setup) makes it skipped; else it passed if its call passed.
    """
    phases: dict[str, dict] = {}
    for reports in stats.values():
        for report in reports:
            if not isinstance(report, pytest.TestReport):
                continue  # collect reports, deselected items, warnings
            entry = phases.setdefault(report.nodeid, {"outcomes": set(), "claims": set(), "reasons": set()})
            props = dict(p for p in getattr(report, "user_properties", []) if p[0] == "claims")
            entry["claims"].update(c for c in props.get("claims", "").split(",") if c)
            if report.failed and run_cleanup_message(report) is not None:
                continue    # the run's cleanup, told apart (run_cleanup_failures): not this scenario's outcome
            if report.failed:
                entry["outcomes"].add("failed")
            elif report.skipped:
                entry["outcomes"].add("skipped")
                if isinstance(report.longrepr, tuple):
                    entry["reasons"].add(report.longrepr[2].removeprefix("Skipped: "))
            elif report.when == "call":
                entry["outcomes"].add("passed")
    out = {}
    for nodeid, entry in phases.items():
        outcomes = entry["outcomes"]
        status = next((s for s in ("failed", "skipped", "passed") if s in outcomes), "")
        out[nodeid] = (status, entry["claims"], entry["reasons"])
    return out


def pytest_terminal_summary(terminalreporter, config):
    """What the sweep of earlier runs removed (when a cloud was swept), then the per-claim verdicts in French
    (coverage.claim_status over the statuses of its scenarios)."""
    sweep = config.stash.get(SWEEP_KEY, None)
    if sweep is not None:
        terminalreporter.write_line(f"popek : balayage des runs précédents : {len(sweep['trouvés'])} ressource(s) "
                                    f"orpheline(s) supprimée(s), {len(sweep['problèmes'])} échec(s)")
        for line in sweep["trouvés"] + sweep["problèmes"]:
            terminalreporter.write_line(f"    {line}")
    cleanup = run_cleanup_failures(terminalreporter.stats)
    if cleanup:
        terminalreporter.write_line("popek : le nettoyage du run a échoué (sans effet sur les verdicts des "
                                    "scénarios) :", red=True)
        for line in cleanup:
            terminalreporter.write_line(f"    {line}")
    per_claim: dict[str, list[tuple[str, set[str]]]] = {}
    for status, ids, reasons in scenario_statuses(terminalreporter.stats).values():
        for claim in ids:
            per_claim.setdefault(claim, []).append((status, reasons))
    if not per_claim:
        return
    tr = terminalreporter
    tr.section("popek : verdict par claim du cours")
    for claim in sorted(per_claim):
        statuses = [s for s, _ in per_claim[claim]]
        verdict = coverage.claim_status(statuses)
        text = claims_mod.CLAIMS[claim].text
        tr.write_line(f"{claim}  {VERDICT_FR[verdict]:<8} {len(statuses)} scénario(s)  {text[:70]}")
        if verdict == "skipped":
            for reason in sorted({r for _, rs in per_claim[claim] for r in rs if r}):
                tr.write_line(f"        raison : {reason}")
    figures = [(r.nodeid, k[7:], v) for o in ("passed", "failed") for r in tr.stats.get(o, [])
               if r.when == "call" for k, v in getattr(r, "user_properties", []) if k.startswith("figure:")]
    if figures:
        tr.section("popek : mesures")
        for nodeid, key, value in figures:
            tr.write_line(f"{key:<55} {value}")
    for report in (r for o in ("passed", "failed") for r in tr.stats.get(o, []) if r.when == "call"):
        for key, text in getattr(report, "user_properties", []):
            if key.startswith("terminal:"):
                tr.section(f"popek : {key[9:]}")
                tr.write_line(text)
