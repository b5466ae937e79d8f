"""pytest imports test modules by basename (rootdir-relative, no packages): two test files of one name in two
test folders stop the whole collection (CI 2026-12-07 18:02: tests/unit/test_host_owner_apt.py beside
tests/integration/test_host_owner_apt.py, « import file mismatch », 0 tests run)."""
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_basename():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, k in names.items() if k > 1] == []
