"""Quiz banks (placeholder until the quiz engine lands): question id -> claim ids."""
from __future__ import annotations

from pathlib import Path

import yaml


def question_claims(directory: Path) -> dict[str, list[str]]:
    out = {}
    for path in sorted(Path(directory).rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for q in doc.get("questions", []):
            out[q["id"]] = list(q.get("claims", []))
    return out
