"""`popek report`: the Allure 3 single-file HTML report, in French, from the last results."""
from __future__ import annotations

import os

from popek import paths
from popek.checks import report as report_mod


def register(sub):
    p = sub.add_parser("report", help="write the single-file HTML report (Allure 3, French) from the results")
    p.add_argument("--results", default=None, help="results directory (default ./popek-results)")
    p.set_defaults(func=lambda args: print(write_report(paths.results(args.results))))


def allure_executable() -> str:
    """Allure 3 from $POPEK_ALLURE, popek's state directory, or PATH; installed with npm on first use."""
    from popek.errors import UserError

    prefix = paths.state_home() / "node"
    found = report_mod.find_allure([os.environ.get("POPEK_ALLURE"), prefix / "node_modules" / ".bin" / "allure"])
    if found:
        return found
    try:
        print(f"popek: installation d'Allure 3 ({report_mod.ALLURE_NPM}) dans {prefix} …", flush=True)
        return report_mod.install_allure(prefix)
    except report_mod.ReportError as exc:
        raise UserError(str(exc)) from None


def write_report(results: paths.Results) -> str:
    from popek.errors import UserError

    try:
        return str(report_mod.generate(allure_executable(), results.allure, results.report))
    except report_mod.ReportError as exc:
        raise UserError(str(exc)) from None
