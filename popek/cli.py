"""The `popek` command line. Sub-commands live in popek/commands/<name>.py, each with register()."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys

import popek.commands
from popek import syspath
from popek.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="popek", description="Conformance and quiz harness for the course 'Virtualisation et OpenStack'.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(popek.commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"popek.commands.{info.name}").register(sub)
    return parser


def split_os_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the rest, the `--os-*` options but --os-cloud, each with its value): the `openstack` client's
    options, which the commands that use a cloud accept (see cloud_options)."""
    rest, given, i = [], [], 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--os-") and not token.startswith(("--os-cloud=",)) and token != "--os-cloud":
            given.append(token)
            if "=" not in token and i + 1 < len(argv):
                given.append(argv[i + 1])
                i += 1
        else:
            rest.append(token)
        i += 1
    return rest, given


def cloud_options(given: list[str], os_cloud) -> dict[str, str]:
    """{OS_* variable: value} for the `--os-*` options given, parsed by the parser openstacksdk's loader
    registers (`OpenStackConfig.register_argparse_arguments`, as python-openstackclient does). An option is
    the same as its OS_* variable for the `openstack` client; popek hands them down that way, so that the
    pytest workers and the `openstack` commands the scenarios run see them, never on a command line."""
    import argparse as argparse_mod

    from popek import paths
    from popek.checks.cloud import connection

    try:
        loaded = connection.open_config(os.environ, paths.embedded_clouds_yaml())
        config, cloud = loaded.config, os_cloud or os.environ.get("OS_CLOUD")
        if cloud and cloud not in loaded.known():
            # the unknown cloud is reported by the connection, with the clouds that exist; the options of
            # the default auth plugin are registered without peeking at it
            from openstack.config import loader
            config, cloud = loader.OpenStackConfig(load_yaml_config=False, load_envvars=False), None
        parser = argparse_mod.ArgumentParser(prog="popek", add_help=False)
        config.register_argparse_arguments(parser, (["--os-cloud", cloud] if cloud else []) + list(given))
    except connection.CloudUnavailable as exc:
        raise UserError(str(exc)) from None
    except Exception as exc:     # the loader's ConfigException: an unknown auth type, a cloud it cannot peek at
        raise UserError(f"options OpenStack invalides : {str(exc).splitlines()[0]}") from None
    known = {o for a in parser._actions for o in a.option_strings}
    # keystoneauth names some plugins' options with underscores (--os-application_credential_id); the
    # `openstack` client (osc-lib) registers every one with dashes (--os-application-credential-id): both
    # spellings are taken, as the client documents the dashed one
    dashed = {o.replace("_", "-"): o for o in known if "_" in o}
    given = [dashed.get(t.split("=", 1)[0], t.split("=", 1)[0]) + ("=" + t.split("=", 1)[1] if "=" in t else "")
             if t.startswith("--os-") else t for t in given]
    unknown = [t.split("=", 1)[0] for t in given if t.startswith("--") and t.split("=", 1)[0] not in known]
    if unknown:
        raise UserError(f"option(s) inconnue(s) du client openstack : {', '.join(unknown)}")
    options, _ = parser.parse_known_args(list(given))
    dests = {a.dest for a in parser._actions for o in a.option_strings if any(t.split("=", 1)[0] == o for t in given)}
    return {"OS_" + d[3:].upper(): str(getattr(options, d)) for d in dests if d.startswith("os_") and getattr(options, d) is not None}


def main(argv=None) -> int:
    syspath.complete_environ()  # a root shell from `su` without `-` lacks /usr/sbin: nft, losetup… (syspath.py)
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `popek run … -- ARGS`: argparse cannot give a positional after options ("unrecognized arguments"),
    # so what follows `--` is handed to the sub-command's pytest_args here.
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own, os_given = split_os_options(argv[:argv.index("--")] if "--" in argv else argv)
    args = parser.parse_args(own)
    if os_given:
        if not hasattr(args, "os_cloud"):
            parser.error(f"les options du client openstack ({os_given[0]}…) n'ont pas de sens pour « popek {args.command} »")
        try:
            os.environ.update(cloud_options(os_given, args.os_cloud))
        except UserError as exc:
            print(f"popek: {exc}", file=sys.stderr)
            return exc.code
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
