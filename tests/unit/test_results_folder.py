"""The results folder: one Results object names its paths, and a run with pytest-xdist workers writes the
one figures.json the README promises (each worker's figures merged by the controller)."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from popek import paths, plugin

def test_results_name_every_path_of_the_folder(tmp_path, monkeypatch):
    found = paths.Results(tmp_path)
    assert [found.allure, found.junit, found.figures, found.report, found.fault_table, found.quiz, found.lab("tp1")] == [
        tmp_path / "allure-results", tmp_path / "junit.xml", tmp_path / "figures.json", tmp_path / "report",
        tmp_path / "fault-table.json", tmp_path / "quiz", tmp_path / "lab" / "tp1"]
    monkeypatch.setenv("POPEK_RESULTS", str(tmp_path / "env"))
    assert paths.results().root == tmp_path / "env"
    assert paths.results(tmp_path / "given").root == tmp_path / "given"


class Config:
    """What the plugin's session hooks read of a pytest config: the stash, the option, a worker's output."""

    def __init__(self, results=None, worker=False):
        self.stash = pytest.Stash()
        self.stash[plugin.FIGURES_KEY] = {}
        self.results = results
        if worker:
            self.workeroutput = {}

    def getoption(self, name, default=None):
        return self.results if name == "popek_results" else default


def test_the_figures_of_every_worker_are_merged_into_figures_json(tmp_path):
    """Each pytest-xdist worker hands its figures to the controller (workeroutput, through execnet: plain
    JSON values), which writes the one figures.json; no per-worker file is left beside it."""
    results = paths.Results(tmp_path / "r")
    controller = Config(str(results.root))
    for worker_id, figures in (("gw0", {"a.py::t1": {"ratio": 91.25}}), ("gw1", {"a.py::t2": {"n": 3, "p": Path("/x")}})):
        worker = Config(str(results.root), worker=True)
        worker.stash[plugin.FIGURES_KEY].update(figures)
        plugin.pytest_sessionfinish(SimpleNamespace(config=worker))
        plugin.pytest_testnodedown(SimpleNamespace(config=controller, workeroutput=worker.workeroutput), None)
    assert not results.root.exists()  # workers write nothing themselves
    plugin.pytest_sessionfinish(SimpleNamespace(config=controller))
    assert json.loads(results.figures.read_text()) == {"a.py::t1": {"ratio": 91.25}, "a.py::t2": {"n": 3, "p": "/x"}}
    assert [p.name for p in results.root.iterdir()] == ["figures.json"]


def test_a_worker_that_crashed_brings_no_figures(tmp_path):
    controller = Config(str(tmp_path))
    plugin.pytest_testnodedown(SimpleNamespace(config=controller), "crashed")
    plugin.pytest_sessionfinish(SimpleNamespace(config=controller))
    assert not paths.Results(tmp_path).figures.exists()  # nothing measured, no file
