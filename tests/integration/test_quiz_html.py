"""The HTML quiz in a real headless Chromium (Debian's, driven by Playwright): answer, « Valider »,
see the score; the browser's score equals popek's grader; the exam file's answers grade in popek;
the page loads nothing from the network.

Set POPEK_QUIZ_SCREENSHOT=1 to also keep the practice screenshot as popek-results/quiz-screenshot.png.
"""
import json
import os
import shutil
from pathlib import Path

import pytest

from popek import paths
from popek.checks.quiz import export
from popek.checks.quiz import sheet as sheets
from popek.checks.quiz.bank import load_banks
from popek.checks.quiz.grading import fr, grade, key
from popek.checks.quiz.variant import draw, present

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
# Flags measured on this machine type (../.library/env/machines/python.md): without the background
# networking ones Chromium keeps trying Google's hosts on a closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DATA = Path(__file__).parent.parent / "unit" / "data" / "quiz"


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Chromium absent (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright absent (pip install playwright)")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path_factory.mktemp("chromium-profile")),
                                                   executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                   viewport={"width": 1000, "height": 900}, accept_downloads=True)
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser_context):
    pg = browser_context.new_page()
    pg.requests, pg.errors = [], []
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    yield pg
    pg.close()


def fill(page, n, item, answer):
    """Answer question n of the page the way a student would: click, type, choose, move."""
    q, sec = present(item), f"#q-{n}"
    t = q["type"]
    if answer is None:
        return
    if t == "single":
        page.check(f"{sec} input[value='{answer}']")
    elif t == "multiple":
        for p in answer:
            page.check(f"{sec} input[value='{p}']")
    elif t == "truefalse":
        page.check(f"{sec} input[value='{'true' if answer else 'false'}']")
    elif t in ("numeric", "short"):
        page.fill(f"{sec} input", f"{answer:g}" if isinstance(answer, float) else str(answer))
    elif t == "matching":
        for i, r in enumerate(answer):
            page.select_option(f"{sec} select[name='q-{n}-{i}']", str(r))
    elif t == "ordering":
        for target, wanted in enumerate(answer):
            current = page.eval_on_selector_all(f"{sec} li", "els => els.map(e => Number(e.dataset.item))")
            for _ in range(current.index(wanted) - target):
                page.click(f"{sec} li[data-item='{wanted}'] button.up")
    elif t == "pgtable":
        for tech, row in answer.items():
            for cond, v in row.items():
                page.select_option(f"{sec} select[name='q-{n}-{tech}-{cond}']", v)


def spoil(item, k):
    """A partly wrong answer, so that the page shows every kind of verdict."""
    t = item.question.type
    if t == "multiple":
        return k[:-1] if len(k) > 1 else k
    if t == "pgtable":
        bad = {tech: dict(row) for tech, row in k.items()}
        tech = next(iter(bad))
        cond = next(iter(bad[tech]))
        bad[tech][cond] = "KO" if bad[tech][cond] == "OK" else "OK"
        return bad
    if t == "single":
        return (k + 1) % len(present(item)["options"])
    if t == "short":
        return "je ne sais pas"
    if t == "numeric":
        return k + 1
    if t == "truefalse":
        return not k
    return k


@pytest.mark.parametrize("part", ["demo", "virtualisation"])
def test_practice_quiz_grades_itself_like_popek(page, tmp_path, part):
    banks = load_banks(DATA) if part == "demo" else load_banks(paths.QUIZZES_DIR)
    if part not in banks:
        pytest.skip(f"pas de banque « {part} » dans quizzes/")
    bank = banks[part]
    html = tmp_path / "entrainement.html"
    html.write_text(export.html(bank, "s", mode="practice", variant_key="alice"), encoding="utf-8")
    variant = draw(bank, "alice", "s")
    answers = {}
    page.goto(html.as_uri())
    assert page.inner_text("h1") == f"Quiz — {bank.title}"
    for n, item in enumerate(variant.items):
        answers[item.id] = spoil(item, key(item)) if n in (0, 1, 4, 7) else key(item)
        fill(page, n, item, answers[item.id])
    page.click("button#submit:has-text('Valider')")
    expected = sum(grade(i, answers[i.id]).score for i in variant.items)
    score = page.locator("#score")
    assert float(score.get_attribute("data-score")) == pytest.approx(expected)
    assert score.inner_text().startswith(f"Score : {fr(expected)}/{fr(variant.max_score)} pt")
    assert 0 < expected < variant.max_score
    for n, item in enumerate(variant.items):
        verdict = grade(item, answers[item.id]).verdict
        assert page.inner_text(f"#q-{n} .fb").startswith(verdict + " : ")
    assert "Voir le cours, section" in page.inner_text("#q-0 .fb")
    shot = tmp_path / "quiz-screenshot.png"
    page.screenshot(path=str(shot))          # the viewport: title, score, first feedbacks
    assert shot.stat().st_size > 10_000
    if os.environ.get("POPEK_QUIZ_SCREENSHOT") and part == "virtualisation":
        dest = paths.results().root / "quiz-screenshot.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest)
    assert all(u.startswith(("file:", "data:")) for u in page.requests), page.requests
    assert not page.errors, page.errors


def test_exam_quiz_holds_no_key_and_its_answer_file_grades_in_popek(page, tmp_path):
    banks = load_banks(DATA)
    bank = banks["demo"]
    html = tmp_path / "examen.html"
    html.write_text(export.html(bank, "exam-secret", mode="exam"), encoding="utf-8")
    variant = draw(bank, export.SHARED_KEY, "exam-secret")
    page.goto(html.as_uri())
    page.fill("#student", "carole")
    for n, item in enumerate(variant.items):
        fill(page, n, item, key(item))
    page.click("button#submit:has-text('Valider')")
    assert "Réponses enregistrées" in page.inner_text("#score")
    with page.expect_download() as dl:
        page.click("#download")
    saved = tmp_path / "carole.json"
    dl.value.save_as(saved)
    assert dl.value.suggested_filename == "popek-quiz-demo-carole.json"
    text = page.content()
    for leaked in ("Kernel-based Virtual Machine", "Équivalence, efficacité, contrôle.", "1946, 1958, 1972, 2004."):
        assert leaked not in text
    s = sheets.load(saved)
    assert s.student == "carole" and s.variant["key"] == export.SHARED_KEY
    outcomes = sheets.grade_sheet(s, sheets.variant_of(s, banks, "exam-secret", saved))
    assert [o.fraction for o in outcomes] == [1.0] * len(variant.items)
    saved_json = json.loads(saved.read_text())
    assert saved_json["answers"][variant.items[0].ref] == key(variant.items[0])
    assert variant.items[0].id not in saved.read_text() and variant.items[0].id not in text   # opaque refs only
    assert len(saved_json["nonce"]) == 32 and s.nonce == saved_json["nonce"]   # class-wide page: per-copy nonce
    assert not page.errors, page.errors
