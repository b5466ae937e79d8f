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
    p.add_argument("-n", dest="workers", default=None, help="parallel workers (pytest-xdist), e.g. 2 or auto")
    p.add_argument("-k", dest="keyword", default=None, help="only scenarios matching this expression")
    p.add_argument("--claim", action="append", default=[], help="only scenarios tagged with this claim (repeatable)")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.add_argument("--no-cloud-up", action="store_true",
                   help="do not start the embedded cloud when no cloud is named (its scenarios then skip)")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    p.set_defaults(func=run)


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
    if args.workers:
        # worksteal: a worker that runs out steals what another has queued, instead of idling while the one
        # that got the long Debian 13 boot still holds the traffic scenarios (measured: -n 2 main job,
        # one worker idle from 90 s to 300 s with the default `load`)
        argv += ["-n", str(args.workers), "--dist", "worksteal"]
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
