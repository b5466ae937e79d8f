"""popek's layers, read from the sources with `ast` (nothing imported), as Tempest's hacking check T112
keeps tempest.lib free of tempest's own config:

- checks/ is a plain library: it imports no pytest, pytest_bdd or allure, nothing of popek's glue
  (popek.steps), plugin (popek.plugin) or command line (popek.cli, popek.commands), and reads no
  setting from the environment (os.environ, os.getenv): popek/ is the one edge that reads settings.
  Handing the whole environment on to a child process ({**os.environ, …}, dict(os.environ, …)) reads
  nothing and is allowed;
- no import circle among popek's modules (popek/, checks/, steps/ as installed: popek.checks.…).
  Imports inside functions count too: a lazy import only hides a circle.
"""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The repository's folders as installed (pyproject.toml's package-dir).
PACKAGES = {"popek": "popek", "popek.checks": "checks", "popek.steps": "steps"}
#: What checks/ must not import: test runners and reports, and popek's own upper layers.
FORBIDDEN = ("pytest", "_pytest", "pytest_bdd", "allure", "allure_commons", "allure_pytest_bdd",
             "popek.steps", "popek.plugin", "popek.cli", "popek.commands")
ENVIRONMENT = ("environ", "environb", "getenv", "getenvb")
#: Environment reads still in checks/, each with why; one that is gone must leave this list too.
ALLOWED = {
    ("checks/localcloud/services.py", "os.environ.get('HOME', '/root')"):
        "the embedded cloud services' HOME, handed on to them as popek's own (checks/localcloud/ is being split)",
}


def modules(root: Path) -> dict[str, Path]:
    """Installed module name -> source file, for every .py under the repository's package folders."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def imports(name: str, path: Path) -> list[tuple[tuple[str, ...], int]]:
    """(what it may import, line) of every import statement in `path`, at any depth: `import X` is (X,),
    `from X import Y` is (X.Y, X): the module X.Y if there is one, else X. Relative imports are resolved
    against `name`."""
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [((alias.name,), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            out += [((f"{base}.{alias.name}", base), node.lineno) for alias in node.names]
    return out


def resolved(candidates: tuple[str, ...], known: dict[str, Path]) -> str:
    """The module an import loads: its first candidate that is one of `known`, else the last."""
    return next((c for c in candidates if c in known), candidates[-1])


def is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
        and node.attr in ENVIRONMENT


def environment_reads(path: Path) -> list[tuple[int, str]]:
    """(line, expression) of every read of the environment in `path`: os.environ / os.getenv however used,
    `from os import environ`, except the whole environment handed on ({**os.environ, …}, dict(os.environ, …))."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    handed_on = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            handed_on |= {id(v) for k, v in zip(node.keys, node.values) if k is None and is_os_environ(v)}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and node.args:
            handed_on |= {id(node.args[0])} if is_os_environ(node.args[0]) else set()
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    reads = []
    for node in ast.walk(tree):
        if is_os_environ(node) and id(node) not in handed_on:
            outer = node
            while id(outer) in parents and isinstance(parents[id(outer)], (ast.Attribute, ast.Call, ast.Subscript)):
                outer = parents[id(outer)]
            reads.append((node.lineno, ast.unparse(outer)))
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and {a.name for a in node.names} & set(ENVIRONMENT):
            reads.append((node.lineno, "from os import " + ", ".join(a.name for a in node.names)))
    return sorted(reads)


def layer_violations(root: Path) -> list[str]:
    """One line per forbidden import or environment read in checks/ ("checks/x.py:12: …")."""
    known = modules(root)
    bad = []
    for name, path in known.items():
        if not name.startswith("popek.checks"):
            continue
        where = path.relative_to(root)
        for candidates, line in imports(name, path):
            hit = next((f for f in FORBIDDEN for c in candidates if c == f or c.startswith(f + ".")), None)
            if hit:
                bad.append(f"{where}:{line}: importe {candidates[0]} (checks/ n'importe pas {hit})")
        for line, read in environment_reads(path):
            if (str(where), read) not in ALLOWED:
                bad.append(f"{where}:{line}: lit l'environnement ({read}) : seul popek/ lit les réglages")
    return sorted(bad)


def import_cycle(root: Path) -> list[str] | None:
    """One import circle among popek's modules ([a, b, …, a]), or None."""
    known = modules(root)
    graph = {name: sorted({m for m in (resolved(c, known) for c, _ in imports(name, path)) if m in known and m != name})
             for name, path in known.items()}
    state: dict[str, int] = {}      # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_checks_is_a_plain_library():
    assert layer_violations(ROOT) == []


def test_every_allowed_environment_read_is_still_there():
    present = {(str(path.relative_to(ROOT)), read) for name, path in modules(ROOT).items()
               if name.startswith("popek.checks") for _, read in environment_reads(path)}
    assert set(ALLOWED) <= present, f"retirez de ALLOWED : {set(ALLOWED) - present}"


def test_no_import_circle_among_popeks_modules():
    cycle = import_cycle(ROOT)
    assert cycle is None, "cercle d'imports : " + " -> ".join(cycle)


def test_the_graph_sees_every_module_and_its_imports():
    known = modules(ROOT)
    assert {"popek.plugin", "popek.checks.needs", "popek.checks.host.needs", "popek.steps.cloud_common"} <= set(known)
    seen = {resolved(c, known) for c, _ in imports("popek.plugin", known["popek.plugin"])}
    assert {"popek.checks.needs", "popek.checks.host.needs", "popek.checks.cloud.needs", "popek.paths"} <= seen


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_a_planted_violation_is_found(tmp_path):
    write(tmp_path, {
        "popek/__init__.py": "", "steps/__init__.py": "", "checks/__init__.py": "",
        "checks/host/__init__.py": "",
        "checks/host/bad.py": """\
            import os
            import pytest
            from popek.steps import cloud_common
            from os import getenv

            def settings():
                from popek import plugin
                return os.environ.get("X"), getenv("Y"), "Z" in os.environ
            """,
        "checks/host/good.py": """\
            import os
            import subprocess

            def here():
                subprocess.run(["true"], env={**os.environ, "LANG": "C"})
                subprocess.run(["true"], env=dict(os.environ, LANG="C"))
                return os.getcwd()
            """,
    })
    assert layer_violations(tmp_path) == [
        "checks/host/bad.py:2: importe pytest (checks/ n'importe pas pytest)",
        "checks/host/bad.py:3: importe popek.steps.cloud_common (checks/ n'importe pas popek.steps)",
        "checks/host/bad.py:4: lit l'environnement (from os import getenv) : seul popek/ lit les réglages",
        "checks/host/bad.py:7: importe popek.plugin (checks/ n'importe pas popek.plugin)",
        "checks/host/bad.py:8: lit l'environnement (os.environ) : seul popek/ lit les réglages",
        "checks/host/bad.py:8: lit l'environnement (os.environ.get('X')) : seul popek/ lit les réglages",
    ]


def test_a_planted_import_circle_is_reported(tmp_path):
    write(tmp_path, {
        "popek/__init__.py": "", "popek/cli.py": "from popek.commands import run\n",
        "popek/commands/__init__.py": "", "popek/commands/run.py": "def go():\n    from popek import cli\n",
        "checks/__init__.py": "", "checks/needs.py": "", "steps/__init__.py": "",
    })
    assert import_cycle(tmp_path) == ["popek.cli", "popek.commands.run", "popek.cli"]
    write(tmp_path, {"popek/commands/run.py": "from . import helper\n", "popek/commands/helper.py": "from popek.checks import needs\n"})
    assert import_cycle(tmp_path) is None
    write(tmp_path, {"checks/needs.py": "from ..steps import x\n", "steps/x.py": "from popek.commands.run import helper\n"})
    assert import_cycle(tmp_path) == ["popek.checks.needs", "popek.steps.x", "popek.commands.run",
                                      "popek.commands.helper", "popek.checks.needs"]
