"""`popek run [host|cloud]`: run the features with pytest-bdd, results in one directory."""
from __future__ import annotations

import os
import shutil

from popek import paths

AREA_MODULES = {"host": "test_host.py", "cloud": "test_cloud.py"}


def register(sub):
    p = sub.add_parser("run", help="run the features (host, cloud, or both) and write the results")
    p.add_argument("area", nargs="?", choices=sorted(AREA_MODULES), help="only this area (default: all)")
    p.add_argument("--results", default=None, help="results directory (default ./popek-results)")
    p.add_argument("--os-cloud", default=None, help="cloud of clouds.yaml (default: $OS_CLOUD, an openrc, else the embedded "
                   "cloud); every other --os-* option of the openstack client is accepted too (--os-password…)")
    p.add_argument("--flavor", default=None, help="this cloud's name for the course's flavor 'small'")
    p.add_argument("--image", default=None, help="this cloud's name for the course's image 'Debian 13'")
    p.add_argument("--net", default=None, help="this cloud's name for the course's network 'public' "
                   "(or course-names: in ./popek.yaml)")
    p.add_argument("-n", dest="workers", default=None, type=workers_option,
                   help="parallel workers (pytest-xdist), e.g. 2 or auto; 0 or 1: one process (serial). "
                   "Default: 2 on a host with 2 usable cores or more, else one process")
    p.add_argument("-k", dest="keyword", default=None, help="only scenarios matching this expression")
    p.add_argument("--claim", action="append", default=[], help="only scenarios tagged with this claim (repeatable)")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.add_argument("--no-cloud-up", action="store_true",
                   help="do not start the embedded cloud when no cloud is named (its scenarios then skip)")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    p.set_defaults(func=run)


#: pytest options that need the scenarios in popek's own process (xdist refuses --pdb when distributing).
SERIAL_PYTEST_OPTIONS = ("--pdb", "--trace")


def workers_option(value: str) -> str:
    """-n's value: a whole number (0 and 1: one process) or xdist's auto/logical."""
    import argparse

    if value in ("auto", "logical") or (value.isdigit() and value.isascii()):
        return value if not value.isdigit() else str(int(value))
    raise argparse.ArgumentTypeError(f"« {value} » n'est pas un nombre de workers (un entier ≥ 0, ou auto)")


def usable_cores() -> int:
    """Cores this process may run on (its affinity: a container's or taskset's limit), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def xdist_workers(given: str | None, area: str | None, extra: list[str], cores: int) -> str | None:
    """xdist's -n for this run, or None for one process. An explicit -n wins: 0 and 1 are one process
    (no worker process at all, as before xdist's default). Without -n: 2 workers on 2 usable cores or
    more (the main job measured 30–55 s shorter on 2 cores: one worker boots the Debian 13 guest while the
    other runs the rest), one process on 1 core, for `popek run host` (its scenarios are short and local:
    two workers' start-up costs more than they save, see benchmarks/README.md), and with --pdb/--trace
    after `--` (a debugger needs the scenarios in this process)."""
    if given is not None:
        return None if given in ("0", "1") else given
    if cores < 2 or area == "host" or any(a in SERIAL_PYTEST_OPTIONS for a in extra):
        return None
    return "2"


def pytest_args(args, results: paths.Results) -> list[str]:
    areas = [args.area] if args.area else sorted(AREA_MODULES)
    argv = [str(paths.STEPS_DIR / AREA_MODULES[a]) for a in areas]
    argv += ["-c", os.devnull, "--rootdir", os.path.commonpath([paths.STEPS_DIR, paths.FEATURES_DIR]), "-p", "no:cacheprovider",
             "-p", "no:allure_pytest", "--strict-markers", "-ra",
             "--alluredir", str(results.allure), "--clean-alluredir",
             "--junitxml", str(results.junit), "-o", "junit_family=xunit2",
             "--popek-results", str(results.root)]
    if args.os_cloud:
        argv += ["--os-cloud", args.os_cloud]
    workers = xdist_workers(args.workers, args.area, list(args.pytest_args), usable_cores())
    if workers:
        # worksteal: a worker that runs out steals what another has queued, instead of idling while the one
        # that got the long Debian 13 boot still holds the traffic scenarios (measured: -n 2 main job,
        # one worker idle from 90 s to 300 s with the default `load`)
        argv += ["-n", workers, "--dist", "worksteal"]
    if args.keyword:
        argv += ["-k", args.keyword]
    for claim in args.claim:
        argv += ["--claim", claim]
    return argv + list(args.pytest_args)


def check_named_cloud(os_cloud) -> None:
    """A cloud the user named (--os-cloud, OS_CLOUD, an openrc) must answer: else one message, nothing runs.
    (popek's default, the embedded cloud, may be absent: its scenarios are then skipped with the reason.)"""
    from popek.checks.cloud import connection
    from popek.errors import UserError

    if not connection.resolve(os_cloud, os.environ, paths.embedded_clouds_yaml()).named:
        note = connection.lone_user_cloud(os.environ)   # the cloud the `openstack` client would use instead
        if note:
            print(f"popek: {note}", flush=True)
        return
    try:
        connection.connect(os_cloud, os.environ, paths.embedded_clouds_yaml())
    except connection.CloudUnavailable as exc:
        raise UserError(str(exc), 2) from None


def check_names(args) -> None:
    """The course's names as this cloud calls them: --flavor/--image/--net handed down to the pytest
    workers ($POPEK_COURSE_NAMES), and popek.yaml read once here so that a malformed one is one message."""
    import json

    from popek.checks.cloud import names
    from popek.errors import UserError

    given = names.from_options(args.flavor, args.image, args.net)
    if given:
        os.environ["POPEK_COURSE_NAMES"] = json.dumps(given)
    try:
        paths.course_names()
    except ValueError as exc:
        raise UserError(str(exc)) from None


def ensure_embedded_cloud(args) -> str | None:
    """Start popek's embedded cloud when the cloud features will run against it (no cloud named by
    --os-cloud, OS_CLOUD or an openrc). Returns why it could not start, or None."""
    from popek.checks.cloud import connection

    if args.area == "host" or args.no_cloud_up:
        return None
    if connection.resolve(args.os_cloud, os.environ, paths.embedded_clouds_yaml()).kind != "embedded":
        return None
    if os.geteuid() != 0:
        print("popek: cloud embarqué non démarré : `popek cloud up` doit tourner en root "
              "(ou nommez un cloud : --os-cloud NOM, OS_CLOUD, openrc) ; ses scénarios seront ignorés", flush=True)
        return None
    from popek.checks.localcloud import lifecycle
    from popek.checks.localcloud.errors import CloudError
    from popek.checks.localcloud.state import CloudState

    try:
        # dataplane=None: the mode the cloud last ran in (a running cloud is repaired, never switched)
        lifecycle.up(CloudState(paths.embedded_cloud_dir()), dataplane=None,
                     log=lambda line: print(f"popek cloud up : {line}", flush=True))
    except CloudError as exc:
        print(f"popek: le cloud embarqué n'a pas démarré : {exc}", flush=True)
        return str(exc)
    return None


def run(args) -> int:
    import pytest

    from popek.errors import UserError
    from popek.commands.report import write_report

    results = paths.results(args.results)
    try:
        results.root.mkdir(parents=True, exist_ok=True)
        (results.root / ".write-test").touch()
        (results.root / ".write-test").unlink()
    except OSError as exc:
        raise UserError(f"dossier de résultats inutilisable : {results.root} ({exc.strerror})") from None
    results.figures.unlink(missing_ok=True)
    if args.area in (None, "cloud"):
        check_names(args)
        check_named_cloud(args.os_cloud)
    cloud_error = ensure_embedded_cloud(args)
    argv = pytest_args(args, results)
    code = int(pytest.main(argv))
    if code == 5:
        raise UserError("aucun scénario sélectionné (pytest code 5)", 5)
    if code in (2, 3, 4):
        return code
    if not args.no_report and shutil.which("npm") is not None:
        try:
            print(f"popek: rapport HTML : {write_report(results)}")
        except UserError as exc:
            print(f"popek: pas de rapport HTML : {exc}")
    print(f"popek: résultats dans {results.root}")
    if cloud_error and code == 0:
        print("popek: code de sortie 1 : le cloud embarqué n'a pas démarré (voir plus haut)")
        return 1
    return code
