"""Progress of long work on the terminal: live (rich) when the output is a terminal, plain lines otherwise.

Two shapes, both plain callables that the library's `log=` parameters accept:
  - `Steps()`: for `popek cloud up` (lifecycle.Progress calls `log.begin(label)` / `log.end(label)` around
    each long step — venv, image builds, databases): on a terminal a spinner with the step and its
    elapsed time, so that a two-minute step is not a silent screen; elsewhere one "… label" line when
    the step starts. Every line logged is printed as before.
  - `Counter(total, what)`: for work over a class (quiz and lab grading, class provision and teardown):
    a bar "12/30 étudiants" with the elapsed time on a terminal; plain lines otherwise (each line logged,
    or "… 12/30 étudiants" every tenth when nothing else is printed).
Use as context managers: the live display stops (and the terminal is restored) on exit, also on Ctrl-C.
"""
from __future__ import annotations

import sys
import threading
from typing import Optional


def _console(stream=None):
    from rich.console import Console

    return Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)


def _progress(console, *columns):
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), *columns, TimeElapsedColumn(),
                    console=console, transient=True)


class Steps:
    """`log` for lifecycle.up: prints each line; shows the running step(s) live on a terminal."""

    def __init__(self, stream=None, live: Optional[bool] = None):
        self.console = _console(stream)
        self.live = self.console.is_terminal if live is None else live
        self._progress = None
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()

    def __enter__(self):
        if self.live:
            self._progress = _progress(self.console)
            self._progress.start()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __call__(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(line, markup=False)
        else:
            print(line, flush=True)

    def begin(self, label: str) -> None:
        with self._lock:
            if self._progress is not None:
                self._tasks[label] = self._progress.add_task(f"{label}…", total=None)
            else:
                print(f"… {label}", flush=True)

    def end(self, label: str) -> None:
        with self._lock:
            task = self._tasks.pop(label, None)
            if task is not None and self._progress is not None:
                self._progress.remove_task(task)


class Counter:
    """`log` for work over `total` items (students, answer files): prints each line logged and counts one
    item per advance() (or per line when count_lines)."""

    def __init__(self, total: int, what: str, stream=None, live: Optional[bool] = None, count_lines: bool = True):
        from rich.progress import BarColumn, MofNCompleteColumn

        self.console = _console(stream)
        self.live = self.console.is_terminal if live is None else live
        self.total, self.what, self.count_lines, self.done = total, what, count_lines, 0
        self._lock = threading.Lock()
        self._progress = _progress(self.console, BarColumn(), MofNCompleteColumn()) if self.live else None
        self._task = None

    def __enter__(self):
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(self.what, total=self.total)
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(line, markup=False)
        else:
            print(line, flush=True)
        if self.count_lines:
            self.advance()

    def iterate(self, items):
        """Yield each item, counting it done when the next one is asked for (the caller's loop works on it
        in between): progress over a loop the edge does not own."""
        for item in items:
            yield item
            self.advance()

    def advance(self, *_ignored) -> None:
        with self._lock:
            self.done += 1
            if self._progress is not None:
                self._progress.update(self._task, completed=self.done)
            elif not self.count_lines and (self.done % 10 == 0 or self.done == self.total):
                print(f"… {self.done}/{self.total} {self.what}", flush=True)
