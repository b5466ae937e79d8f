"""The `popek` command line. Sub-commands live in popek/commands/<name>.py, each with register()."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys

import popek.commands


class UserError(Exception):
    """A user's mistake (bad input, missing prerequisite): one message, exit code `code`, no traceback."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="popek", description="Conformance and quiz harness for the course 'Virtualisation et OpenStack'.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(popek.commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"popek.commands.{info.name}").register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `popek run … -- ARGS`: argparse cannot give a positional after options ("unrecognized arguments"),
    # so what follows `--` is handed to the sub-command's pytest_args here.
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if extra:
        if not hasattr(args, "pytest_args"):
            parser.error(f"« -- » n'a pas de sens pour « popek {args.command} »")
        args.pytest_args = list(args.pytest_args or []) + extra
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()                  # a closed pipe shows up here rather than at interpreter exit
        return code
    except BrokenPipeError:
        # stdout closed early (`popek claims | head`): stop quietly, and keep Python's final flush from failing too
        with contextlib.suppress(OSError, ValueError):     # stdout may be no real file (tests)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141                          # 128 + SIGPIPE, as a shell reports a process killed by it
    except UserError as exc:
        print(f"popek: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("popek: interrompu", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
