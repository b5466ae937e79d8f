"""The Allure 3 single-file HTML report (npm `allure`, no Java), in French, analytics removed."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ALLURE_NPM = "allure@3.18.0"
# Every Allure 3.18 index.html (awesome, classic and dashboard alike) embeds a Google Tag Manager <script>
# with hard-coded analytics: remove it so that a report opened on a connected machine sends nothing anywhere.
_GTM = (re.compile(r"<script[^>]*googletagmanager[^>]*>\s*</script>", re.I),
        re.compile(r"<script>\s*window\.dataLayer[^<]*</script>", re.I))


class ReportError(RuntimeError):
    """The report could not be written (no allure, no results, generator failed)."""


def find_allure(candidates) -> str | None:
    """The first existing allure executable among `candidates` (paths or names on PATH)."""
    for c in candidates:
        if not c:
            continue
        try:
            if Path(c).is_file() and os.access(c, os.X_OK):
                return str(Path(c))
        except OSError:  # under a directory this user may not enter (another user's home)
            continue
        if shutil.which(str(c)):
            return shutil.which(str(c))
    return None


def install_allure(prefix: Path) -> str:
    """npm-install Allure 3 under `prefix`; return the path of its executable."""
    npm = shutil.which("npm")
    if not npm:
        raise ReportError("npm introuvable : installez Node.js et npm (Debian : apt-get install nodejs npm) "
                          "pour produire le rapport HTML Allure")
    try:
        prefix.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"impossible d'installer Allure 3 dans {prefix} ({exc.strerror}) : choisissez un "
                          "dossier à vous avec POPEK_HOME, ou un allure installé avec POPEK_ALLURE") from None
    proc = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", ALLURE_NPM],
                          capture_output=True, text=True)
    exe = prefix / "node_modules" / ".bin" / "allure"
    if proc.returncode != 0 or not exe.exists():
        raise ReportError(f"npm install {ALLURE_NPM} a échoué : {proc.stderr.strip()[-500:]}")
    return str(exe)


def strip_analytics(html: str) -> str:
    for pattern in _GTM:
        html = pattern.sub("", html)
    return html


def generate(allure: str, allure_results: Path, out_dir: Path, name: str = "popek : Virtualisation et OpenStack") -> Path:
    """Write `out_dir/index.html` from `allure_results`; return its path."""
    if not allure_results.is_dir() or not any(allure_results.glob("*-result.json")):
        raise ReportError(f"aucun résultat dans {allure_results} : lancez d'abord `popek run`")
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([allure, "awesome", str(allure_results), "--single-file", "--report-language", "fr",
                           "--report-name", name, "-o", str(out_dir)], capture_output=True, text=True)
    index = out_dir / "index.html"
    if proc.returncode != 0 or not index.exists():
        raise ReportError(f"allure a échoué (code {proc.returncode}) : {(proc.stderr or proc.stdout).strip()[-800:]}")
    index.write_text(strip_analytics(index.read_text(encoding="utf-8")), encoding="utf-8")
    return index
