"""Derive the package list from the mapped directories (see [tool.setuptools] package-dir)."""
import os

from setuptools import setup

MAPPING = {
    "popek": "popek",
    "popek.checks": "checks",
    "popek.steps": "steps",
    "popek.features": "features",
    "popek.quizzes": "quizzes",
}


def packages():
    for package, directory in MAPPING.items():
        for root, dirs, _files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
            yield package + root[len(directory):].replace(os.sep, ".")


setup(packages=sorted(packages()))
