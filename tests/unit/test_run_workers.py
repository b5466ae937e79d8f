"""`popek run`'s workers: 2 pytest-xdist workers by default on 2 usable cores or more, one process on 1 core,
for the host area alone and under a debugger; an explicit -n always wins (0 and 1: one process). The cores
are given, never read from this host."""
from pathlib import Path

import pytest

from popek import cli, paths
from popek.commands import run


def argv(cmdline: list[str], cores: int, monkeypatch) -> list[str]:
    """The pytest argv `popek run <cmdline>` would hand to pytest on a host with `cores` usable cores."""
    seen = {}
    parser = cli.build_parser()
    parser._subparsers._group_actions[0].choices["run"].set_defaults(func=lambda a: seen.update(args=a))
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(run, "usable_cores", lambda: cores)
    assert cli.main(["run", *cmdline]) == 0
    return run.pytest_args(seen["args"], paths.Results(Path("/tmp/r")))


def xdist_part(args: list[str]) -> list[str]:
    """-n N --dist worksteal as given to pytest, or [] for one process (pytest's own -n after `--` too)."""
    i = args.index("-n") if "-n" in args else None
    return [] if i is None else args[i:i + 4]


@pytest.mark.parametrize("cores, expected", [(1, []), (2, ["-n", "2", "--dist", "worksteal"]),
                                             (8, ["-n", "2", "--dist", "worksteal"])])
def test_default_is_two_workers_from_two_usable_cores(monkeypatch, cores, expected):
    assert xdist_part(argv([], cores, monkeypatch)) == expected
    assert xdist_part(argv(["cloud"], cores, monkeypatch)) == expected


@pytest.mark.parametrize("given", ["0", "1", "00"])
def test_explicit_zero_or_one_is_one_process(monkeypatch, given):
    assert xdist_part(argv(["-n", given], 8, monkeypatch)) == []
    assert xdist_part(argv(["cloud", "-n", given, "--", "-x"], 2, monkeypatch)) == []


@pytest.mark.parametrize("given, cores", [("2", 1), ("3", 2), ("auto", 1), ("logical", 4), ("2", 2)])
def test_explicit_workers_win_over_the_cores(monkeypatch, given, cores):
    assert xdist_part(argv(["-n", given], cores, monkeypatch)) == ["-n", given, "--dist", "worksteal"]
    assert xdist_part(argv(["host", "-n", given], cores, monkeypatch)) == ["-n", given, "--dist", "worksteal"]


def test_host_area_alone_is_one_process(monkeypatch):
    assert xdist_part(argv(["host"], 2, monkeypatch)) == []
    assert xdist_part(argv(["host", "--claim", "C05"], 16, monkeypatch)) == []


@pytest.mark.parametrize("debugger", ["--pdb", "--trace"])
def test_a_debugger_after_double_dash_keeps_one_process(monkeypatch, debugger):
    args = argv(["cloud", "--", debugger], 2, monkeypatch)
    assert xdist_part(args) == [] and args[-1] == debugger
    assert xdist_part(argv(["cloud", "-n", "2", "--", debugger], 2, monkeypatch))[:2] == ["-n", "2"]  # asked for


@pytest.mark.parametrize("bad", ["deux", "-1", "2.5", "", "٢"])
def test_a_bad_worker_count_is_one_french_usage_error(monkeypatch, capsys, bad):
    monkeypatch.setattr(run, "usable_cores", lambda: 2)
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "-n", bad])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "n'est pas un nombre de workers" in err and "Traceback" not in err


def test_usable_cores_is_this_process_affinity(monkeypatch):
    monkeypatch.setattr(run.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert run.usable_cores() == 3
    monkeypatch.delattr(run.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(run.os, "cpu_count", lambda: None)
    assert run.usable_cores() == 1
