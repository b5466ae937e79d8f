"""The command line's own parsing: what follows `--` reaches pytest (popek run), and nowhere else."""
from pathlib import Path

import pytest

from popek import cli, paths
from popek.commands import run


def test_arguments_after_double_dash_reach_pytest(monkeypatch):
    seen = {}
    parser = cli.build_parser()
    parser._subparsers._group_actions[0].choices["run"].set_defaults(func=lambda a: seen.update(args=a))
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["run", "cloud", "-k", "volume", "--", "-p", "plugin_x", "-x"]) == 0
    args = seen["args"]
    assert (args.area, args.keyword, args.pytest_args) == ("cloud", "volume", ["-p", "plugin_x", "-x"])
    assert run.pytest_args(args, paths.Results(Path("/tmp/r")))[-5:] == ["-k", "volume", "-p", "plugin_x", "-x"]


def test_double_dash_elsewhere_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["claims", "--", "x"])
    assert exc.value.code == 2 and "n'a pas de sens" in capsys.readouterr().err
