"""Progress of long work: plain lines when the output is not a terminal, a live display (rich) when it
is; lifecycle.up's steps tell the display when they start and end."""
import io
import time

from popek.checks.localcloud.lifecycle import Progress
from popek.progress import Counter, Steps


def test_a_step_is_announced_when_it_starts_not_only_when_it_ends(capsys):
    with Steps(live=False) as log:
        progress = Progress(log)
        with progress.step("environnement Python des services (venv)"):
            log("  pip : 42 paquets")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "… environnement Python des services (venv)"
    assert lines[1] == "  pip : 42 paquets"
    assert lines[2].endswith("environnement Python des services (venv) (0.0 s)")


def test_on_a_terminal_the_running_steps_are_live_and_every_line_still_printed():
    out = io.StringIO()
    with Steps(stream=out, live=True) as log:
        progress = Progress(log)
        with progress.step("images (construction ou cache)"), progress.step("bases de données"):
            assert len(log._tasks) == 2          # parallel or nested steps: both shown
            log("une ligne")
        assert log._tasks == {}
    assert "une ligne" in out.getvalue() and "images (construction ou cache) (" in out.getvalue()


def test_a_plain_log_without_begin_or_end_still_works(capsys):
    with Progress(print).step("configuration"):
        pass
    assert "configuration (" in capsys.readouterr().out


def test_a_class_counter_counts_each_student_line(capsys):
    with Counter(3, "étudiants", live=False) as log:
        for sid in ("a", "b", "c"):
            log(f"{sid} : prêt")
    assert log.done == 3 and capsys.readouterr().out.splitlines() == ["a : prêt", "b : prêt", "c : prêt"]


def test_a_silent_loop_prints_a_plain_count_every_tenth(capsys):
    with Counter(25, "copies corrigées", live=False, count_lines=False) as bar:
        assert list(bar.iterate(range(25))) == list(range(25))
    assert capsys.readouterr().out.splitlines() == ["… 10/25 copies corrigées", "… 20/25 copies corrigées",
                                                     "… 25/25 copies corrigées"]


def test_the_live_bar_stops_even_when_the_work_is_interrupted():
    out = io.StringIO()
    try:
        with Counter(5, "étudiants", stream=out, live=True) as bar:
            bar.advance()
            time.sleep(0.05)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert not bar._progress.live.is_started
