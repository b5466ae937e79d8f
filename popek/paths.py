"""Where popek's shipped data and its state live. Settings are read here and in the CLI only."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
FEATURES_DIR = Path(__import__("popek.features", fromlist=["_"]).__path__[0])
QUIZZES_DIR = Path(__import__("popek.quizzes", fromlist=["_"]).__path__[0])
STEPS_DIR = Path(__import__("popek.steps", fromlist=["_"]).__path__[0])

#: Feature areas: name given on the command line -> folder under features/.
AREAS = {"host": "hote", "cloud": "cloud"}


def state_home() -> Path:
    """popek's state directory (embedded cloud, caches): $POPEK_HOME or ~/.local/share/popek."""
    env = os.environ.get("POPEK_HOME")
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data) / "popek"


@dataclasses.dataclass(frozen=True)
class Results:
    """The one results folder and every path in it (the README's "Reading a verdict" lists them)."""

    root: Path

    @property
    def allure(self) -> Path:
        """allure-pytest-bdd's results, which the HTML report is made from."""
        return self.root / "allure-results"

    @property
    def junit(self) -> Path:
        return self.root / "junit.xml"

    @property
    def figures(self) -> Path:
        """Every figure the scenarios measured: {scenario node id: {figure: value}}."""
        return self.root / "figures.json"

    @property
    def report(self) -> Path:
        """The folder of the single-file HTML report (index.html)."""
        return self.root / "report"

    @property
    def fault_table(self) -> Path:
        """popek's own test session's table claim → fault → verdict (tests/conftest.py)."""
        return self.root / "fault-table.json"

    @property
    def quiz(self) -> Path:
        return self.root / "quiz"

    def lab(self, lab_id: str) -> Path:
        return self.root / "lab" / lab_id


def results(value: str | os.PathLike | None = None) -> Results:
    """The results folder named by --results, else $POPEK_RESULTS, else ./popek-results."""
    return Results(Path(value or os.environ.get("POPEK_RESULTS") or "popek-results").resolve())


def embedded_cloud_dir() -> Path:
    """The embedded cloud's state (venv, configs, databases, logs, pids)."""
    return state_home() / "cloud"


def course_names() -> dict[str, str]:
    """{course name: this cloud's name} (checks/cloud/names.py): `course-names:` of ./popek.yaml (or of
    $POPEK_CONFIG), overridden by `popek run --flavor/--image/--net` (passed down as $POPEK_COURSE_NAMES,
    JSON, so that every pytest-xdist worker sees them). ValueError (French) for a malformed file."""
    import json

    import yaml

    from popek.checks.cloud import names

    path = Path(os.environ.get("POPEK_CONFIG") or "popek.yaml")
    mapping = {}
    if path.is_file() or os.environ.get("POPEK_CONFIG"):
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ValueError(f"{path}{f' ligne {mark.line + 1}' if mark else ''} : illisible ({type(exc).__name__})") from None
        mapping = names.parse(data, str(path))
    given = os.environ.get("POPEK_COURSE_NAMES")
    if given:
        mapping.update(json.loads(given))
    return mapping


def embedded_clouds_yaml() -> Path:
    """clouds.yaml written by `popek cloud up`, with entries `popek` (member) and `popek-admin`."""
    return embedded_cloud_dir() / "clouds.yaml"
