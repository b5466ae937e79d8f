"""The opt-in slow tests share one mark (tests/faults.py `slow`): skipped unless POPEK_SLOW_FAULTS=1, with a
reason that says what the test costs and how to run it; no test file reads the variable on its own."""
import re
from pathlib import Path

import faults

TESTS = Path(__file__).resolve().parents[1]


def test_slow_skips_unless_the_variable_is_1(monkeypatch):
    for value, skipped in ((None, True), ("0", True), ("yes", True), ("1", False)):
        if value is None:
            monkeypatch.delenv(faults.SLOW_ENV, raising=False)
        else:
            monkeypatch.setenv(faults.SLOW_ENV, value)
        mark = faults.slow("faute lente (~1 min)", " (sous flock -x)").mark
        assert mark.name == "skipif"
        assert mark.args == (skipped,), value
        assert mark.kwargs["reason"] == ("faute lente (~1 min) hors du budget CI : POPEK_SLOW_FAULTS=1 pour le "
                                         "lancer (sous flock -x)")


def test_no_test_file_has_its_own_slow_skipif():
    own = [f"{p.relative_to(TESTS)}:{n}" for p in TESTS.rglob("*.py") if p.name != "faults.py"
           for n, line in enumerate(p.read_text().splitlines(), 1)
           if re.search(r"environ(\.get\(|\[)\s*[\"']POPEK_SLOW_FAULTS", line)]
    assert own == [], f"use faults.slow(...) instead: {own}"
