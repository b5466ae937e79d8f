"""The one way the embedded cloud runs a command that must succeed.

The output is captured (or appended to a log file), and a non-zero exit raises the error type the
caller names — ImageBuildError for an image build, AptError for apt, CloudError elsewhere — with one
French message: what was run, its exit code, and the end of what it printed (or where its log is).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Optional

from popek.checks.localcloud.errors import CloudError
from popek.checks.secrets import REDACT

#: How much of a failed command's output its error message carries.
TAIL_LINES = 15
TAIL_CHARS = 1500


def tail(text: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last `lines` lines of `text`, at most its last `chars` characters."""
    return "\n".join((text or "").strip().splitlines()[-lines:])[-chars:]


def shown(argv: list[str], chars: int = 300) -> str:
    """`argv` as one line for a message, cut after `chars` characters (a long mmdebstrap line)."""
    line = " ".join(argv)
    return line if len(line) <= chars else line[:chars] + " …"


def _append(log: Path):
    """`log` opened for appending, mode 0600 (created so, and made so if it was not)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a")
    os.fchmod(out.fileno(), 0o600)
    return out


def note(log: Path, text: str) -> None:
    """One `--- popek: TEXT` line appended to `log`, as run() heads each command it logs there (redacted)."""
    with _append(log) as out:
        out.write(f"\n--- popek: {REDACT(text)}\n")


def run(argv: list[str], error: type[Exception] = CloudError, *, what: str = "", check: bool = True,
        env: Optional[dict] = None, inherit_env: bool = True, cwd: Optional[Path | str] = None,
        input: Optional[str] = None, log: Optional[Path] = None,
        timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    """Run `argv` and return its CompletedProcess (text mode).

    error: the exception raised when it exits non-zero (and `check`); what: the message's opening
    words (e.g. "plan de données : "); env: variables added to this process's environment, or the whole
    environment when not `inherit_env` (the services' own tools: no OS_* of the caller leaks); cwd, input,
    timeout: as for subprocess.run; log: append stdout and stderr to this file (mode 0600, its command
    line written first) instead of capturing them, and name it in the message. Known passwords are
    redacted from what is written or raised (none should be on a command line anyway).
    """
    full_env = ({**os.environ, **env} if env else None) if inherit_env else dict(env or {})
    stdin = None if input is not None else subprocess.DEVNULL
    if log is None:
        proc = subprocess.run(argv, env=full_env, cwd=cwd, input=input, stdin=stdin, capture_output=True,
                              text=True, timeout=timeout)
    else:
        with _append(log) as out:
            out.write(f"\n--- popek: {REDACT(' '.join(argv))}\n")
            out.flush()
            proc = subprocess.run(argv, env=full_env, cwd=cwd, input=input, stdin=stdin, stdout=out,
                                  stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        said = f"voir {log}" if log is not None else tail(proc.stderr or proc.stdout) or "(aucune sortie)"
        raise error(REDACT(f"{what}`{shown(argv)}` a échoué (code {proc.returncode}) :\n{said}"))
    return proc
