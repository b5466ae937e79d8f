"""Fixtures every cloud feature shares: the cloud (once per session), the run's cleanup ledger.

`cloud` resolves the cloud like the `openstack` client (--os-cloud, OS_CLOUD, an openrc, else the
embedded cloud), authenticates once, then sweeps the orphans of earlier popek runs. When no cloud can be
reached its value is an `Unreachable` and the `@needs:cloud` tag skips every cloud scenario with the reason;
a cloud the user *named* that is broken is an error instead (the scenarios error with the one message).
"""
import os

import pytest

from popek import paths
from popek.checks.cloud import compute, connection, ledger as ledger_mod, probe, shared as shared_mod
from popek.checks.cloud.needs import Unreachable
from popek.checks.secrets import REDACT
from popek.plugin import SWEEP_KEY, tell


def run_identity(config) -> tuple[str, str]:
    """(run id, worker): pytest-xdist workers share the controller's testrunuid, each has its own prefix.
    xdist's `--testrunuid HEX` names the run with or without workers (a caller then knows its prefix)."""
    worker = getattr(config, "workerinput", None)
    if worker:
        return ledger_mod.new_run_id(worker.get("testrunuid")), worker.get("workerid", "gw")
    return ledger_mod.new_run_id(config.getoption("testrunuid", None)), "main"


def embedded_started() -> str | None:
    """What shows that the embedded cloud runs (processes of its services alive, from their pid files),
    or None when it was never started, is stopped, or none of its processes survived (a reboot)."""
    from popek.checks.localcloud import services
    from popek.checks.localcloud.state import CloudState

    state = CloudState(paths.embedded_cloud_dir())
    names = sorted(p.stem for p in (state.root / "run").glob("*.pid"))
    alive = [n for n in names if services.read_pid(state, n)]
    if not alive:
        return None
    dead = [n for n in names if n not in alive]
    # alive is not answering: a service frozen (SIGSTOP, state T) is what a client waits on (Keystone frozen:
    # every connection times out), named from the host's own evidence
    pids = {n: services.read_pid(state, n) for n in alive}
    frozen = [n for n, pid in pids.items() if pid and services.stopped_members(pid)]
    return (f"le cloud embarqué est en marche ({len(alive)} service(s) vivant(s)"
            + (f" ; démarré(s) mais sans processus : {', '.join(dead)}" if dead else "")
            + (f" ; gelé(s) (processus à l'état T : arrêtés par un signal) : {', '.join(frozen)}" if frozen else "")
            + ")")


@pytest.fixture(scope="session")
def cloud(request):
    """The cloud under test (connection.Cloud), or Unreachable(reason)."""
    try:
        found = connection.connect(request.config.getoption("popek_os_cloud"), os.environ, paths.embedded_clouds_yaml())
    except connection.CloudUnavailable as exc:
        if exc.named:
            pytest.fail(str(exc), pytrace=False)
        started = embedded_started()
        if started:  # the embedded cloud runs but does not answer: broken, not absent
            return Unreachable(f"le cloud embarqué ne répond pas : {exc}", broken=f"{exc} ; {started}")
        return Unreachable(f"pas de cloud joignable : {exc}")
    if found.choice.kind == "embedded":     # its guests' fence, taken by the owner's `flush ruleset`: put back
        from popek.checks.localcloud import lifecycle
        from popek.checks.localcloud.state import CloudState

        said = lifecycle.refence(CloudState(paths.embedded_cloud_dir()), root=os.geteuid() == 0)
        if said:
            tell(request.config, f"popek : {said}")
    try:
        found.names = paths.course_names()     # the course's names as this cloud calls them (popek.yaml, --image…)
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)
    run_id, worker = run_identity(request.config)
    found.facts.update(run=run_id, prefix=f"popek-{run_id}-{worker}")
    across = (getattr(request.config, "workerinput", None) or {}).get("popek_shared")
    if across and os.path.isdir(across["dir"]):     # the run's folder, shared by its workers (probe.unbootable)
        found.facts["run_folder"] = across["dir"]
    ledger_mod.terminate_like_ctrl_c()      # CI cancelling the job (SIGTERM) cleans up as Ctrl-C does
    # Orphans of earlier runs (killed hard): gone before this run creates anything. Every worker of this
    # run shares its run id, so no worker sweeps another's resources; a run with anything younger than
    # AUTO_SWEEP_MIN_AGE may be alive elsewhere (another popek on the same project) and is left alone.
    try:
        swept, problems = ledger_mod.sweep(found.conn, run_id, min_age=ledger_mod.AUTO_SWEEP_MIN_AGE,
                                           read_only=probe.read_only(found.roles))
    except Exception as exc:  # one service down (Swift, Glance…): its scenarios fail and say so, the others run
        swept, problems = [], [f"balayage incomplet : {type(exc).__name__} : {REDACT(str(exc))[:300]}"]
    found.facts["sweep"] = {"trouvés": [f"{e.kind} {e.name}" for e in swept], "problèmes": problems}
    request.config.stash[SWEEP_KEY] = found.facts["sweep"]
    return found


@pytest.fixture
def conn(cloud):
    """The member connection (openstack.connection.Connection)."""
    return cloud.conn


@pytest.fixture
def ledger(cloud, evidence, run_ledger):
    """This scenario's resources: named with the run's prefix, deleted in reverse order at the end
    (also on failure or Ctrl-C); a deletion that fails is reported as an error of the scenario."""
    book = ledger_mod.Ledger(cloud.conn, cloud.facts["prefix"])
    try:
        yield book
    finally:
        problems = book.cleanup()
        cloud.facts["supprimées"] = cloud.facts.get("supprimées", 0) + sum(e.done for e in book.entries)
        evidence.json("ressources créées puis supprimées", [
            {"type": e.kind, "nom": e.name, "id": e.id, "supprimée": e.done} for e in book.entries])
    assert not problems, "nettoyage incomplet : " + " ; ".join(problems)


@pytest.fixture(scope="session")
def run_ledger(cloud, request):
    """The resources this worker's scenarios share (a routed network, two servers, when they are not the
    run's RunShared: see `shared`): named with the run's prefix, deleted when the session ends, also after
    a failure or Ctrl-C (pytest tears session fixtures down in its session finish); a deletion that fails
    raises RunCleanupIncomplete, which pytest shows as an error at the last scenario's teardown and popek's
    plugin reports as the run's (exit status 1), not as that scenario's verdict.
    It holds the run's heartbeat (made first, deleted last), which tells other runs' sweeps that this
    one is alive; at the end the worker sweeps whatever still carries its own prefix (a create
    interrupted before the ledger learnt of it). After an interruption (Ctrl-C, SIGTERM) it says what the
    cleanup did: what still carries the prefix after it is named, else nothing is left."""
    book = ledger_mod.Ledger(cloud.conn, cloud.facts["prefix"])
    heartbeat = None
    try:
        heartbeat = ledger_mod.Heartbeat(book)
    except Exception:   # no heartbeat (quota…): other runs then judge this one by its dated resources
        pass
    try:
        yield book
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        problems = book.cleanup()
        if not problems:
            found, problems = ledger_mod.sweep(cloud.conn, cloud.facts["run"], prefix=cloud.facts["prefix"],
                                               read_only=probe.read_only(cloud.roles))
            book.entries += found       # deleted by name (done) or left (in problems)
        problems = cloud.facts.pop("problèmes partagés", []) + problems     # the `shared` fixture's, torn down first
        if request.session.exitstatus == pytest.ExitCode.INTERRUPTED:
            deleted = cloud.facts.get("supprimées", 0) + sum(e.done for e in book.entries)
            left = f"{len(problems)} laissée(s) : " + " ; ".join(problems) if problems else "rien n'est resté"
            tell(request.config, REDACT(f"popek : interrompu ; nettoyage de {cloud.facts['prefix']} : "
                                        f"{deleted} ressource(s) supprimée(s), {left}"))
    if problems:
        raise ledger_mod.RunCleanupIncomplete("nettoyage incomplet des ressources partagées du run : "
                                              + " ; ".join(problems))


@pytest.fixture(scope="session")
def shared(cloud, run_ledger, request):
    """popek.checks.cloud.shared.Shared: what the scenarios of the run share, made on first use. Under
    pytest-xdist (the controller handed the worker a folder and the run's key, see popek.plugin), one set
    for all the workers of the run (RunShared, named `popek-<run>-run-…`, deleted by its last user);
    else this session's own, in the run's ledger."""
    across = (getattr(request.config, "workerinput", None) or {}).get("popek_shared")
    if across and os.path.isdir(across["dir"]):
        private, public = across["key"]
        REDACT.add(private)
        found = shared_mod.RunShared(cloud.conn, across["dir"], f"popek-{cloud.facts['run']}-run", (private, public),
                                     admin=cloud.admin, admin_reason=cloud.admin_reason,
                                     embedded=cloud.embedded_root, avoid=lambda: probe.unbootable(cloud),
                                     judge=pair_judge(cloud, f"popek-{cloud.facts['run']}-run"))
    else:
        found = shared_mod.Shared(cloud.conn, run_ledger, admin=cloud.admin, admin_reason=cloud.admin_reason,
                                  embedded=cloud.embedded_root, avoid=lambda: probe.unbootable(cloud),
                                  judge=pair_judge(cloud, cloud.facts["prefix"]))
    if selection_needs(request.session, "dataplane"):
        # the dataplane probe before the pair boots (whichever scenario asks for it first): an image the probe
        # finds not booting is then passed over by the pair, which the dataplane scenarios log into
        unbootable_images(cloud)
    try:
        # one set for all workers: the first worker here asks Nova for the pair at once (only when the run's
        # selection has a scenario that uses it), so that its boot runs beside the scenarios before the first
        # that needs it; that one then only waits for ACTIVE (an error reaches it as if met there)
        if isinstance(found, shared_mod.RunShared) and selection_uses_pair(request.session):
            found.start_pair()
        yield found
    finally:
        try:
            problems, deleted = found.close()
        except Exception as exc:    # a listing refused by a broken cloud: told as the run's cleanup, by run_ledger
            problems, deleted = [f"ressources partagées du run : {type(exc).__name__} : {REDACT(str(exc))[:300]}"], 0
        cloud.facts["supprimées"] = cloud.facts.get("supprimées", 0) + deleted
        cloud.facts["problèmes partagés"] = problems


def pair_judge(cloud, prefix: str):
    """Shared's judge of the run's pair: whether its image boots (probe.judge_pair, its extra instance named
    with `prefix`); an image found not booting is remembered for the run (probe.remember_unbootable, every
    worker's), so that C20 names it and every image choice of the run passes it over. On a cloud reached with
    admin credentials no probe instance boots: the pair's boots are the run's only evidence of its images."""
    def judge(servers):
        verdict = probe.judge_pair(cloud.conn, servers, prefix)
        if verdict.image_id:
            probe.remember_unbootable(cloud, verdict.image_id, verdict.finding)
        return verdict
    return judge


def selection_needs(session, need: str) -> bool:
    """Whether one of the session's collected scenarios has the tag @needs:`need`."""
    return any(marker.args and marker.args[0] == need
               for item in session.items for marker in item.iter_markers("needs"))


def unbootable_images(cloud) -> dict:
    """{image id: finding} of the images this run found not booting (probe.unbootable), once the dataplane
    need has been asked (needs.need_dataplane, once per session: on a cloud popek reaches without admin
    credentials its probe boots the smallest image, and another one when that one stays silent). What C20
    reports, and what the run's image choices pass over."""
    from popek.checks.cloud import needs

    if isinstance(cloud, Unreachable):
        return {}
    try:
        needs.need_dataplane(cloud)
    except AssertionError:      # a broken dataplane (both images silent): the dataplane scenarios' ÉCHEC
        pass
    return probe.unbootable(cloud)


def uses_pair(step_func):
    """Marks a step definition that takes the run's pair (shared_pair, shared.listed()): a selection with
    such a step starts the pair's boot early in an xdist run (see `shared`)."""
    step_func.popek_uses_pair = True
    return step_func


def selection_uses_pair(session) -> bool:
    """Whether one of the session's collected scenarios (after -k, --claim…) has a step marked uses_pair:
    each step matched to its definition as pytest-bdd does it when the scenario runs. pytest-bdd's
    internals (9.x): with others, False (nothing boots early, pair() boots on first use as before)."""
    try:
        from pytest_bdd.scenario import find_fixturedefs_for_step, scenario_wrapper_template_registry
        from pytest_bdd.steps import step_function_context_registry
    except ImportError:
        return False
    try:
        manager = session._fixturemanager
        for item in session.items:
            template = scenario_wrapper_template_registry.get(getattr(item, "obj", None))
            if template is None:
                continue
            callspec = getattr(item, "callspec", None)
            example = callspec.params.get("_pytest_bdd_example", {}) if callspec else {}
            for step in template.render(example).steps:
                for fixturedef in find_fixturedefs_for_step(step, manager, item):
                    context = step_function_context_registry.get(fixturedef.func)
                    if getattr(getattr(context, "step_func", None), "popek_uses_pair", False):
                        return True
    except Exception:   # other internals than these: the same fallback, never an error of the scenarios
        return False
    return False


def shared_pair(shared, ledger):
    """The run's two ACTIVE servers, for this scenario alone until `ledger` (its own) has undone its
    changes (shared.hold), or skip when the cloud has nothing to boot."""
    shared.hold(ledger)
    try:
        return shared.pair()
    except compute.NoRoom as exc:   # the project's quota: its limit and its use are the reason
        pytest.skip(str(exc))
    except compute.NothingToBoot as exc:
        pytest.skip(f"{exc} dans ce cloud : rien à démarrer")


def bootable(conn, cloud_init: bool = False, min_ram: int = 0, avoid=()):
    """(image, flavor) to boot, or skip the scenario when the cloud has none (nothing to boot is not a failure);
    avoid: the images the run found not booting (unbootable_images), passed over while another one fits."""
    try:
        image = compute.pick_image(conn, cloud_init, avoid=avoid)
        return image, compute.pick_flavor(conn, image, min_ram)
    except compute.NothingToBoot as exc:
        pytest.skip(f"{exc} dans ce cloud : rien à démarrer")
