"""Exports of the banks: Moodle XML and GIFT (teacher files, keys inside, for import into the LMS) and
the self-contained HTML quiz (student file).

Type mapping (Moodle XML / GIFT):
- single → multichoice, one answer at 100 % (GIFT `=right ~wrong`).
- multiple → multichoice with several answers: each correct option +100/n %, each wrong one −100/n %,
  which is exactly popek's rule (Moodle sums the fractions and clamps the total to [0, 100 %]).
- truefalse → truefalse. numeric → numerical with the absolute tolerance (the unit goes in the text).
- short → shortanswer, case-insensitive. Moodle does not ignore accents and punctuation as popek
  does: list the accented and unaccented forms in `accept` when both should count.
- matching → matching; distractors are extra answers (empty sub-questions). Moodle grades it as the
  fraction of correct pairs, like popek.
- ordering → Moodle's "ordering" question type (core since Moodle 4.4, a plugin before) with grading
  RELATIVE_NEXT_EXCLUDE_LAST, popek's rule; in GIFT, that type's `{>N ALL VERTICAL …}` syntax.
- pgtable → matching: one sub-question per cell "Technique — condition" to match with OK or KO,
  graded as the fraction of correct cells, like popek.
Parameters: one Moodle question per parameter set. Pools and parameter sets go to a sub-category
"<part>/<pool>" so that a Moodle "random question" from it draws one of them. Moodle draws uniformly
among the category's questions, each parameter set counting as one question, whereas popek draws a
question of the pool first and then one of its parameter sets: in a pool that mixes a plain question
and a question with k parameter sets, Moodle shows the plain one with probability 1/(k+1), popek with
1/2. Exclusions (`excludes:`) have no Moodle equivalent either.

The HTML quiz: practice mode embeds the keys (base64, which hides nothing from a curious student:
obfuscation is not security) and grades in the browser; exam mode embeds no key at all and only lets
the student download an answer file for `popek quiz grade`.
"""
from __future__ import annotations

import base64
import html as html_lib
import json
import xml.etree.ElementTree as ET

from popek.checks.quiz.bank import Bank, Question, normalise
from popek.checks.quiz.grading import expected_text, key, numeric_value
from popek.checks.quiz.variant import Item, draw, label, present

COURSE = "Virtualisation et OpenStack"
SHARED_KEY = "commun"


def _instances(q: Question) -> list[tuple[str, Item]]:
    """(Moodle name, item with its params) for each parameter set, bank order of options."""
    identity = dict(order=tuple(range(len(q.choices) if q.type in ("single", "multiple") else
                                      len(q.pairs) if q.type == "matching" else len(q.items))),
                    right_order=tuple(range(len(q.right_items()))) if q.type == "matching" else ())
    sets = q.params or [{}]
    return [(q.id if len(sets) == 1 else f"{q.id}-p{n}", Item(q, dict(p), **identity)) for n, p in enumerate(sets, 1)]


def _category_path(bank: Bank, q: Question) -> str:
    base = f"$course$/top/{COURSE}/{bank.title}"
    alternatives = len(bank.pools()[q.pool_key]) > 1 or len(q.params) > 1
    return f"{base}/{q.pool_key}" if alternatives else base


def _fraction(x: float) -> str:
    return f"{x:.5f}".rstrip("0").rstrip(".")


def _html(text: str) -> str:
    return "<p>" + html_lib.escape(text).replace("\n", "<br>") + "</p>"


def _text_el(parent, tag, text, fmt="html"):
    el = ET.SubElement(parent, tag, {"format": fmt} if fmt else {})
    ET.SubElement(el, "text").text = text
    return el


def _moodle_question(quiz, name: str, item: Item):
    q = item.question
    t = item.text
    mtype = {"single": "multichoice", "multiple": "multichoice", "truefalse": "truefalse", "numeric": "numerical",
             "short": "shortanswer", "matching": "matching", "ordering": "ordering", "pgtable": "matching"}[q.type]
    el = ET.SubElement(quiz, "question", {"type": mtype})
    ET.SubElement(ET.SubElement(el, "name"), "text").text = name
    prompt = t(q.prompt) + (f" (en {t(q.unit)})" if q.type == "numeric" and q.unit else "")
    _text_el(el, "questiontext", _html(prompt))
    _text_el(el, "generalfeedback", _html(f"{t(q.feedback)}\nVoir le cours, section « {t(q.section)} »."))
    ET.SubElement(el, "defaultgrade").text = f"{q.points:g}"
    ET.SubElement(el, "penalty").text = "0.3333333"
    ET.SubElement(el, "hidden").text = "0"
    ET.SubElement(el, "idnumber").text = name
    if q.type in ("single", "multiple"):
        ET.SubElement(el, "single").text = "true" if q.type == "single" else "false"
        ET.SubElement(el, "shuffleanswers").text = "true" if q.shuffle else "false"
        ET.SubElement(el, "answernumbering").text = "abc"
        n_ok = sum(c.correct for c in q.choices)
        for c in q.choices:
            frac = (100.0 if c.correct else 0.0) if q.type == "single" else (100.0 if c.correct else -100.0) / n_ok
            a = _text_el(el, "answer", _html(t(c.text)))
            a.set("fraction", _fraction(frac))
            _text_el(a, "feedback", _html(t(c.feedback)) if c.feedback else "")
    elif q.type == "truefalse":
        for value in (True, False):
            a = _text_el(el, "answer", "true" if value else "false", fmt="moodle_auto_format")
            a.set("fraction", "100" if value == q.answer else "0")
            _text_el(a, "feedback", "")
    elif q.type == "numeric":
        a = _text_el(el, "answer", f"{numeric_value(item):g}", fmt="moodle_auto_format")
        a.set("fraction", "100")
        ET.SubElement(a, "tolerance").text = f"{q.tolerance:g}"
        _text_el(a, "feedback", "")
    elif q.type == "short":
        ET.SubElement(el, "usecase").text = "0"
        for form in q.accept:
            a = _text_el(el, "answer", t(form), fmt="moodle_auto_format")
            a.set("fraction", "100")
            _text_el(a, "feedback", "")
    elif q.type in ("matching", "pgtable"):
        ET.SubElement(el, "shuffleanswers").text = "true"
        if q.type == "matching":
            pairs = [(t(left), t(right)) for left, right in q.pairs] + [("", t(d)) for d in q.distractors]
        else:
            pairs = [(f"{label(tech)} — {label(cond).lower()}", v) for tech, row in q.table.items() for cond, v in row.items()]
        for left, right in pairs:
            sub = _text_el(el, "subquestion", _html(left) if left else "")
            ET.SubElement(ET.SubElement(sub, "answer"), "text").text = right
    elif q.type == "ordering":
        for tag, value in (("layouttype", "VERTICAL"), ("selecttype", "ALL"), ("selectcount", str(len(q.items))),
                           ("gradingtype", "RELATIVE_NEXT_EXCLUDE_LAST"), ("showgrading", "SHOW"),
                           ("numberingstyle", "none")):
            ET.SubElement(el, tag).text = value
        for n, it in enumerate(q.items, 1):
            a = _text_el(el, "answer", _html(t(it)))
            a.set("fraction", f"{n}.0000000")
    tags = ET.SubElement(el, "tags")
    for c in q.claims:
        ET.SubElement(ET.SubElement(tags, "tag"), "text").text = c
    return el


def question_count(banks: dict[str, Bank]) -> int:
    """How many LMS questions the Moodle XML and GIFT exports hold (one per parameter set)."""
    return sum(len(_instances(q)) for bank in banks.values() for q in bank.questions)


def moodle_xml(banks: dict[str, Bank]) -> str:
    """A Moodle XML question file: a category per part (and per pool), every question with its key."""
    quiz = ET.Element("quiz")
    current = None
    for bank in banks.values():
        for q in bank.questions:
            path = _category_path(bank, q)
            if path != current:
                cat = ET.SubElement(quiz, "question", {"type": "category"})
                ET.SubElement(ET.SubElement(cat, "category"), "text").text = path
                current = path
            for name, item in _instances(q):
                _moodle_question(quiz, name, item)
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n"


def gift_escape(text: str) -> str:
    """GIFT's reserved characters, escaped as Moodle's own exporter does."""
    out = str(text).replace("\\", "\\\\")
    for ch in "~=#{}:":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\r", "").replace("\n", "\\n")


def _gift_question(name: str, item: Item) -> str:
    q = item.question
    t = item.text
    e = lambda s: gift_escape(t(s))  # noqa: E731
    prompt = t(q.prompt) + (f" (en {t(q.unit)})" if q.type == "numeric" and q.unit else "")
    general = f"####{gift_escape(t(q.feedback) + ' Voir le cours, section « ' + t(q.section) + ' ».')}"
    head = f"// claims: {' '.join(q.claims)}\n::{gift_escape(name)}::[plain]{gift_escape(prompt)}"
    if q.type in ("single", "multiple"):
        n_ok = sum(c.correct for c in q.choices)
        parts = []
        for c in q.choices:
            fb = f"#{e(c.feedback)}" if c.feedback else ""
            if q.type == "single":
                parts.append(("=" if c.correct else "~") + e(c.text) + fb)
            else:
                parts.append(f"~%{_fraction((100.0 if c.correct else -100.0) / n_ok)}%{e(c.text)}{fb}")
        body = "\n\t".join(parts)
        return f"{head}{{\n\t{body}\n\t{general}\n}}"
    if q.type == "truefalse":
        return f"{head}{{{'TRUE' if q.answer else 'FALSE'}{general}}}"
    if q.type == "numeric":
        return f"{head}{{#{numeric_value(item):g}:{q.tolerance:g}{general}}}"
    if q.type == "short":
        return f"{head}{{" + " ".join("=" + e(a) for a in q.accept) + f"{general}}}"
    if q.type in ("matching", "pgtable"):
        if q.type == "matching":
            pairs = [(e(left), e(right)) for left, right in q.pairs] + [("", e(d)) for d in q.distractors]
        else:
            pairs = [(gift_escape(f"{label(tech)} — {label(cond).lower()}"), v)
                     for tech, row in q.table.items() for cond, v in row.items()]
        body = "\n\t".join(f"={left} -> {right}" for left, right in pairs)
        return f"{head}{{\n\t{body}\n\t{general}\n}}"
    if q.type == "ordering":
        # The ordering type's own GIFT syntax. Moodle's GIFT reader hands the type the text between the
        # braces, general feedback (####) already taken off and escapes already turned into placeholders
        # that the type never turns back: items are written unescaped, one per line (load_bank refuses
        # items that cannot be: braces, backslashes, line breaks, a leading "//", "####").
        items = "\n".join(t(i) for i in q.items)
        return f"{head}{{>{len(q.items)} ALL VERTICAL RELATIVE_NEXT_EXCLUDE_LAST SHOW none\n{items}\n{general}\n}}"
    raise AssertionError(q.type)


def gift(banks: dict[str, Bank]) -> str:
    """A GIFT file: `$CATEGORY:` per part (and pool), every question with its key."""
    out, current = [f"// popek — banques de questions du cours « {COURSE} » (fichier enseignant : clés incluses)"], None
    for bank in banks.values():
        for q in bank.questions:
            path = _category_path(bank, q)
            if path != current:
                out.append(f"$CATEGORY: {path}")
                current = path
            for name, item in _instances(q):
                out.append(_gift_question(name, item))
    return "\n\n".join(out) + "\n"


def _practice_key(item: Item) -> dict:
    """What the browser needs to grade one item itself (practice mode only)."""
    q = item.question
    k = {"key": key(item), "feedback": item.text(q.feedback), "section": item.text(q.section),
         "expected": expected_text(item)}
    if q.type in ("single", "multiple"):
        k["choice_feedback"] = [item.text(q.choices[i].feedback) for i in item.order]
    if q.type == "numeric":
        k["tolerance"] = q.tolerance
    if q.type == "short":
        k["accept"] = sorted({normalise(item.text(a)) for a in q.accept})
    return k


def html(bank: Bank, secret: str, mode: str = "practice", variant_key: str = SHARED_KEY, count: int = 0,
         student: str = "") -> str:
    """The self-contained offline HTML quiz of one part for one variant.

    bank: the part. secret: the exam secret (seeds the variant). mode: "practice" (keys embedded,
    graded in the browser) or "exam" (no key; the student downloads an answer file).
    variant_key: what the variant is drawn from (a student id, or SHARED_KEY for a file given to everyone).
    student: pre-filled student id (read-only when given); the answer file's digest is bound to it, or
    valid under any student id when it is empty (a page shared by a group).
    """
    if mode not in ("practice", "exam"):
        raise ValueError(mode)
    variant = draw(bank, variant_key, secret, count, student=student)
    data = {"module": bank.module, "title": bank.title, "mode": mode, "student": student,
            "variant": variant.describe(), "questions": [present(i) for i in variant.items]}
    keys = ""
    if mode == "practice":
        raw = json.dumps([_practice_key(i) for i in variant.items], ensure_ascii=False).encode("utf-8")
        keys = base64.b64encode(raw).decode("ascii")
    page = _TEMPLATE
    for marker, value in (("@@TITLE@@", html_lib.escape(f"Quiz — {bank.title}")),
                          # no "<" at all inside the <script> element: neither "</script>" nor "<!--" can end it
                          ("@@DATA@@", json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")),
                          ("@@KEYS@@", keys)):
        page = page.replace(marker, value)
    return page


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>@@TITLE@@</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:52rem;margin:1.5rem auto;padding:0 1rem;color:#1d2430;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}.sub{color:#5a6475;margin-top:0}
.question{border:1px solid #d5dae3;border-radius:.5rem;padding:.8rem 1rem;margin:1rem 0;background:#fbfcfe}
.question h2{font-size:1rem;margin:.1rem 0 .5rem;color:#2d4f8a}.prompt{font-weight:600;margin:.2rem 0 .6rem}
label.opt{display:block;margin:.2rem 0;cursor:pointer}table.pg{border-collapse:collapse}table.pg td,table.pg th{border:1px solid #d5dae3;padding:.25rem .5rem}
ol.order{padding-left:1.5rem}ol.order li{margin:.2rem 0}ol.order button{margin-left:.4rem}
.fb{margin-top:.6rem;padding:.5rem .7rem;border-radius:.4rem;white-space:pre-line}
.fb.ok{background:#e3f5e6;border-left:4px solid #2e8b3d}.fb.part{background:#fff4d6;border-left:4px solid #c99700}.fb.ko{background:#fde4e4;border-left:4px solid #c0392b}
#score{font-size:1.3rem;font-weight:700;margin:1rem 0}button.main{font-size:1.05rem;padding:.5rem 1.4rem;background:#2d4f8a;color:#fff;border:0;border-radius:.4rem;cursor:pointer}
textarea{width:100%;height:8rem;font-family:monospace}.note{color:#5a6475;font-size:.9rem}
</style>
</head>
<body>
<h1 id="title"></h1>
<p class="sub" id="subtitle"></p>
<p><label>Identifiant étudiant : <input id="student" autocomplete="off"></label></p>
<div id="score" role="status"></div>
<div id="result"></div>
<form id="quiz" onsubmit="return false"></form>
<p><button type="button" class="main" id="submit">Valider</button></p>
<p class="note" id="note"></p>
<script type="application/json" id="quiz-data">@@DATA@@</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("quiz-data").textContent);
const KEYS_B64 = "@@KEYS@@";
const L = "abcdefghijklmnopqrstuvwxyz";
const el = (tag, attrs, ...kids) => { const e = document.createElement(tag); for (const [k, v] of Object.entries(attrs || {})) { if (k === "text") e.textContent = v; else e.setAttribute(k, v); } for (const k of kids) e.append(k); return e; };
const TYPE_FR = {single: "choix unique", multiple: "choix multiples", truefalse: "vrai ou faux", numeric: "réponse numérique", short: "réponse courte", matching: "association", ordering: "remise en ordre", pgtable: "tableau de Popek et Goldberg"};
const touched = {};
const fr = x => String(Math.round(x * 100) / 100).replace(".", ",");   // French decimals: "0,33"
// A class-wide exam page (no student id inside) stamps each copy with a random nonce: the grader
// refuses two files carrying the same one under two ids (a classmate's copy handed in as one's own).
const NONCE = (DATA.mode === "exam" && !DATA.student) ? [...crypto.getRandomValues(new Uint8Array(16))].map(b => b.toString(16).padStart(2, "0")).join("") : "";

function render() {
  document.getElementById("title").textContent = "Quiz — " + DATA.title;
  const maxPts = DATA.questions.reduce((s, q) => s + q.points, 0);
  document.getElementById("subtitle").textContent = (DATA.mode === "practice" ? "Entraînement : correction immédiate après « Valider »." : "Examen : vos réponses sont enregistrées dans un fichier à rendre ; la note sera donnée à la correction.") + " " + DATA.questions.length + " questions, " + fr(maxPts) + " points.";
  const st = document.getElementById("student");
  if (DATA.student) { st.value = DATA.student; st.readOnly = true; }
  if (DATA.mode === "practice") st.closest("p").hidden = true;   // practice grades itself: no id needed
  document.getElementById("note").textContent = DATA.mode === "practice" ? "Ce fichier d'entraînement contient les réponses pour se corriger lui-même : ce n'est pas un examen." : "";
  const form = document.getElementById("quiz");
  DATA.questions.forEach((q, n) => {
    const name = "q-" + n;
    const sec = el("section", {class: "question", id: name, "data-qid": q.id, "data-type": q.type});
    sec.append(el("h2", {text: "Question " + (n + 1) + " — " + TYPE_FR[q.type] + " (" + fr(q.points) + " pt)"}), el("div", {class: "prompt", text: q.prompt}));
    if (q.type === "single" || q.type === "multiple") {
      q.options.forEach((o, i) => sec.append(el("label", {class: "opt"}, el("input", {type: q.type === "single" ? "radio" : "checkbox", name: name, value: String(i)}), " " + L[i] + ") " + o)));
    } else if (q.type === "truefalse") {
      for (const [v, t] of [["true", "Vrai"], ["false", "Faux"]]) sec.append(el("label", {class: "opt"}, el("input", {type: "radio", name: name, value: v}), " " + t));
    } else if (q.type === "numeric" || q.type === "short") {
      sec.append(el("label", {}, "Réponse : ", el("input", {type: "text", name: name, inputmode: q.type === "numeric" ? "decimal" : "text"}), q.unit ? " " + q.unit : ""));
    } else if (q.type === "matching") {
      q.lefts.forEach((left, i) => { const s = el("select", {name: name + "-" + i}); s.append(el("option", {value: "", text: "—"})); q.rights.forEach((r, j) => s.append(el("option", {value: String(j), text: r}))); sec.append(el("label", {class: "opt"}, left + " → ", s)); });
    } else if (q.type === "ordering") {
      const ol = el("ol", {class: "order", id: name + "-list"});
      q.items.forEach((it, i) => { const li = el("li", {"data-item": String(i)}, it + " ", el("button", {type: "button", class: "up", title: "monter", text: "↑"}), el("button", {type: "button", class: "down", title: "descendre", text: "↓"})); ol.append(li); });
      ol.addEventListener("click", ev => { const b = ev.target.closest("button"); if (!b) return; const li = b.closest("li"); touched[name] = true; if (b.classList.contains("up") && li.previousElementSibling) li.parentNode.insertBefore(li, li.previousElementSibling); if (b.classList.contains("down") && li.nextElementSibling) li.parentNode.insertBefore(li.nextElementSibling, li); });
      sec.append(el("p", {class: "note", text: "Utilisez ↑ et ↓ pour ranger les éléments."}), ol);
    } else if (q.type === "pgtable") {
      const tb = el("table", {class: "pg"}); const head = el("tr", {}, el("th", {text: "Technique"})); q.conditions.forEach(c => head.append(el("th", {text: c[1]}))); tb.append(head);
      q.techniques.forEach(t => { const tr = el("tr", {}, el("th", {text: t[1]})); q.conditions.forEach(c => { const s = el("select", {name: name + "-" + t[0] + "-" + c[0]}); for (const v of ["", "OK", "KO"]) s.append(el("option", {value: v, text: v || "—"})); tr.append(el("td", {}, s)); }); tb.append(tr); });
      sec.append(tb);
    }
    sec.append(el("div", {class: "fb", hidden: ""}));
    form.append(sec);
  });
}

function answerOf(q, n) {
  const name = "q-" + n, sec = document.getElementById(name);
  if (q.type === "single") { const c = sec.querySelector("input:checked"); return c ? Number(c.value) : null; }
  if (q.type === "multiple") { const c = [...sec.querySelectorAll("input:checked")].map(x => Number(x.value)); return c.length ? c : null; }
  if (q.type === "truefalse") { const c = sec.querySelector("input:checked"); return c ? c.value === "true" : null; }
  if (q.type === "numeric" || q.type === "short") { const v = sec.querySelector("input").value.trim(); return v === "" ? null : (q.type === "numeric" ? v.replace(",", ".").replace(/\s/g, "") : v); }
  if (q.type === "matching") { const v = q.lefts.map((_, i) => sec.querySelector("select[name='" + name + "-" + i + "']").value); return v.every(x => x === "") ? null : v.map(x => x === "" ? null : Number(x)); }
  if (q.type === "ordering") { return touched[name] ? [...sec.querySelectorAll("li")].map(li => Number(li.dataset.item)) : null; }
  if (q.type === "pgtable") { const out = {}; let any = false; q.techniques.forEach(t => { out[t[0]] = {}; q.conditions.forEach(c => { const v = sec.querySelector("select[name='" + name + "-" + t[0] + "-" + c[0] + "']").value; if (v) { out[t[0]][c[0]] = v; any = true; } }); }); return any ? out : null; }
  return null;
}

function norm(s) { return s.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase().replace(/[^\p{L}\p{N}\s]|_/gu, " ").split(/\s+/).filter(Boolean).join(" "); }

// The same partial-credit rules as popek/checks/quiz/grading.py.
function fraction(q, k, a) {
  if (a === null) return 0;
  const key = k.key;
  switch (q.type) {
    case "single": return a === key ? 1 : 0;
    case "multiple": { const right = new Set(key); let good = 0, bad = 0; for (const x of new Set(a)) { if (right.has(x)) good++; else bad++; } return Math.max(0, (good - bad) / right.size); }
    case "truefalse": return a === key ? 1 : 0;
    case "numeric": { const x = Number(a); return Number.isFinite(x) && Math.abs(x - key) <= k.tolerance + 1e-9 ? 1 : 0; }
    case "short": return k.accept.includes(norm(a)) ? 1 : 0;
    case "matching": return a.filter((x, i) => x === key[i]).length / key.length;
    case "ordering": { const rank = {}; a.forEach((p, r) => rank[p] = r); let kept = 0; for (let i = 0; i + 1 < key.length; i++) if (rank[key[i + 1]] === rank[key[i]] + 1) kept++; return kept / (key.length - 1); }
    case "pgtable": { let good = 0, all = 0; for (const [t, row] of Object.entries(key)) for (const [c, v] of Object.entries(row)) { all++; if (a[t] && a[t][c] === v) good++; } return good / all; }
  }
  return 0;
}

function sheet() {
  const answers = {};
  DATA.questions.forEach((q, n) => answers[q.id] = answerOf(q, n));
  const s = {format: "popek-quiz-answers/1", student: document.getElementById("student").value.trim(), part: DATA.module, mode: DATA.mode, variant: DATA.variant, answers: answers};
  if (NONCE) s.nonce = NONCE;
  return s;
}

function submit() {
  const s = sheet(), result = document.getElementById("result"), score = document.getElementById("score");
  result.textContent = "";
  if (DATA.mode === "practice") {
    const keys = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(KEYS_B64), c => c.charCodeAt(0))));
    let total = 0, max = 0;
    DATA.questions.forEach((q, n) => {
      const k = keys[n], a = s.answers[q.id], f = fraction(q, k, a), pts = f * q.points;
      total += pts; max += q.points;
      const verdict = a === null ? "Sans réponse" : f >= 1 ? "Correct" : f > 0 ? "Partiellement correct" : "Incorrect";
      const lines = [verdict + " : " + fr(pts) + "/" + fr(q.points) + " pt."];
      if (k.choice_feedback && a !== null) for (const p of (q.type === "single" ? [a] : a)) if (k.choice_feedback[p]) lines.push("« " + q.options[p] + " » : " + k.choice_feedback[p]);
      if (f < 1) lines.push("Réponse attendue : " + k.expected);
      lines.push(k.feedback, "Voir le cours, section « " + k.section + " ».");
      const fb = document.querySelector("#q-" + n + " .fb");
      fb.textContent = lines.join("\n"); fb.className = "fb " + (f >= 1 ? "ok" : f > 0 ? "part" : "ko"); fb.hidden = false;
    });
    score.textContent = "Score : " + fr(total) + "/" + fr(max) + " pt (" + Math.round(100 * total / max) + " %)";
    score.dataset.score = String(total); score.dataset.max = String(max);
  } else {
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(s.student)) { score.textContent = "Indiquez votre identifiant étudiant (lettres, chiffres, . _ @ -) avant de valider."; return; }
    const text = JSON.stringify(s, null, 1);
    const a = el("a", {id: "download", download: "popek-quiz-" + s.part + "-" + s.student + ".json", href: "data:application/json;charset=utf-8," + encodeURIComponent(text), text: "Télécharger mes réponses"});
    score.textContent = "Réponses enregistrées : téléchargez le fichier et rendez-le à l'enseignant.";
    result.append(el("p", {}, a), el("textarea", {id: "answers-json", readonly: ""}));
    document.getElementById("answers-json").value = text;
  }
  window.scrollTo(0, 0);
}

render();
document.getElementById("submit").addEventListener("click", submit);
</script>
</body>
</html>
"""
