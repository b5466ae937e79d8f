"""Shared by the quiz tests: the small test bank, and answers built from a variant's views."""
from pathlib import Path

from hypothesis import strategies as st

from popek.checks.quiz.grading import key
from popek.checks.quiz.variant import present

DATA = Path(__file__).parent / "data" / "quiz"


def answer_strategy(item):
    """Any well-formed answer to `item` (or None), in display positions."""
    v = present(item)
    t = v["type"]
    if t == "single":
        s = st.integers(0, len(v["options"]) - 1)
    elif t == "multiple":
        s = st.lists(st.integers(0, len(v["options"]) - 1), unique=True)
    elif t == "truefalse":
        s = st.booleans()
    elif t == "numeric":
        s = st.one_of(st.just(key(item)), st.integers(-5000, 5000), st.floats(allow_nan=False, allow_infinity=False))
    elif t == "short":
        s = st.one_of(st.just(key(item)), st.text(max_size=20))
    elif t == "matching":
        s = st.lists(st.one_of(st.none(), st.integers(0, len(v["rights"]) - 1)),
                     min_size=len(v["lefts"]), max_size=len(v["lefts"]))
    elif t == "ordering":
        s = st.permutations(list(range(len(v["items"]))))
    elif t == "pgtable":
        s = st.fixed_dictionaries({tech: st.fixed_dictionaries({c: st.sampled_from(["OK", "KO"]) for c, _ in v["conditions"]})
                                   for tech, _ in v["techniques"]})
    else:
        raise AssertionError(t)
    return st.one_of(st.none(), s)


# ---------------------------------------------------------------------------------------------------
# Moodle's GIFT import, ported line by line to Python, to import popek's GIFT export as Moodle does.
# Sources (read with the search tools, not guessed):
#   moodle/moodle question/format.php            qformat_default::readquestions (questions between blank lines)
#   moodle/moodle question/format/gift/format.php qformat_gift::readquestion, escapedchar_pre/post,
#                                                  parse_text_with_format, answerweightparser, commentparser
#   moodle/moodle question/type/ordering/questiontype.php  qtype_ordering::import_from_gift,
#                                                  set_options_for_import, save_question_options (<p> reduction)
# PHP semantics kept: trim() strips " \t\n\r\0\x0B" only; empty("0") is true; str_replace with arrays
# replaces pair after pair; strpos/strrpos return False (here -1) when absent.
# ---------------------------------------------------------------------------------------------------
import re as _re

_PHP_WS = " \t\n\r\0\x0b"
_ESCAPED = ["\\:", "\\#", "\\=", "\\{", "\\}", "\\~", "\\n"]
_PLACEHOLDERS = ["&&058;", "&&035;", "&&061;", "&&123;", "&&125;", "&&126;", "&&010"]
_CHARS = [":", "#", "=", "{", "}", "~", "\n"]
_WEIGHT = _re.compile(r"^%\-*([0-9]{1,2})\.?([0-9]*)%")


def _trim(s):
    return s.strip(_PHP_WS)


def _empty(s):
    return s in ("", "0")


def _escapedchar_pre(s):
    s = s.replace("\\\\", "&&092;")
    for e, p in zip(_ESCAPED, _PLACEHOLDERS):
        s = s.replace(e, p)
    return s.replace("&&092;", "\\")


def _escapedchar_post(s):
    for p, c in zip(_PLACEHOLDERS, _CHARS):
        s = s.replace(p, c)
    return s


_FORMATS = {"moodle": "moodle", "html": "html", "plain": "plain", "markdown": "markdown"}


def _parse_text_with_format(text, default="moodle"):
    fmt = default
    if text.startswith("["):
        end = text.find("]")
        name = _FORMATS.get(text[1:end]) if end != -1 else None
        if name is not None:
            fmt, text = name, text[end + 1:]
    return {"text": _trim(_escapedchar_post(text)), "format": fmt}


def _answerweightparser(answer):
    answer = answer[1:]
    end = answer.find("%")
    weight = float(answer[:end]) / 100
    return weight, answer[end + 1:]


def _commentparser(answer, fmt):
    bits = answer.split("#", 1)
    ans = _parse_text_with_format(_trim(bits[0]), fmt)
    feedback = _parse_text_with_format(_trim(bits[1]), fmt) if len(bits) > 1 else {"text": "", "format": fmt}
    return ans, feedback


def _clean_question_name(name):
    return _trim(_re.sub(r"<[^>]*>", "", name))          # clean_param(PARAM_TEXT) strips tags


def _ordering_import_from_gift(question, extra):
    """qtype_ordering::import_from_gift: `extra` is readquestion's answer text (escapes are placeholders)."""
    selecttype = r"(?:ALL|EXACT|RANDOM|REL|CONTIGUOUS|CONTIG)?"
    layouttype = r"(?:HORIZONTAL|HORI|H|1|VERTICAL|VERT|V|0)?"
    gradingtype = (r"(?:ALL_OR_NOTHING|ABSOLUTE_POSITION|ABSOLUTE|ABS|RELATIVE_NEXT_EXCLUDE_LAST|"
                   r"RELATIVE_NEXT_INCLUDE_LAST|RELATIVE_ONE_PREVIOUS_AND_NEXT|RELATIVE_ALL_PREVIOUS_AND_NEXT|"
                   r"RELATIVE_TO_CORRECT|RELATIVE|RELLONGEST_ORDERED_SUBSET|LONGEST_CONTIGUOUS_SUBSET)?")
    showgrading = r"(?:SHOW|TRUE|YES|1|HIDE|FALSE|NO|0)?"
    numbering = r"(?:none|123|abc|ABCD|iii|IIII)?"
    search = (rf"^\s*>\s*(\d+)\s*({selecttype})\s*({layouttype})\s*({gradingtype})\s*({showgrading})\s*"
              rf"({numbering})\s*(.*?)\s*$")
    if _empty(extra or ""):
        return None
    m = _re.match(search, extra, _re.S)
    if not m:
        return None
    count, select, layout, grading, show, numberingstyle, rest = (g.strip(_PHP_WS) for g in m.groups())
    answers = [a for a in _re.split(r"[\r\n]+", m.group(7)) if not _empty(a)]
    question["qtype"] = "ordering"
    question["selectcount"] = int(count) if int(count) >= 2 and int(count) <= len(answers) else min(6, len(answers))
    question["selecttype"] = {"ALL": "ALL", "EXACT": "ALL", "CONTIGUOUS": "CONTIGUOUS", "CONTIG": "CONTIGUOUS"}.get(
        select.upper(), "RANDOM")
    question["gradingtype"] = grading.upper() if grading.upper() in (
        "ALL_OR_NOTHING", "RELATIVE_NEXT_INCLUDE_LAST", "RELATIVE_ONE_PREVIOUS_AND_NEXT", "RELATIVE_ALL_PREVIOUS_AND_NEXT",
        "LONGEST_ORDERED_SUBSET", "LONGEST_CONTIGUOUS_SUBSET", "RELATIVE_TO_CORRECT") else (
        "ABSOLUTE_POSITION" if grading.upper() in ("ABS", "ABSOLUTE", "ABSOLUTE_POSITION") else "RELATIVE_NEXT_EXCLUDE_LAST")
    question["showgrading"] = 0 if show.upper() in ("HIDE", "FALSE", "NO") else 1
    question["numberingstyle"] = numberingstyle
    answers = [a for a in (_trim(a) for a in answers) if not _empty(a)]
    # save_question_options: a lone <p>…</p> reduced to its text, trimmed, blanks skipped; order = fraction 1, 2, …
    saved = []
    for a in answers:
        if a.count("<p>") == 1:
            a = _re.sub(r"^\s*<p>\s*(.*?)(\s*<br\s*/?>)*\s*</p>\s*$", r"\1", a)
        a = _trim(a)
        if a != "":
            saved.append(a)
    question["answer"] = saved
    question["fraction"] = list(range(1, len(saved) + 1))
    return question


def moodle_gift_readquestion(lines):
    """qformat_gift::readquestion: one question (dict), False (only comments) or None (Moodle's error)."""
    lines = [" " if _trim(ln).startswith("//") else ln for ln in lines]
    text = _trim("\n".join(lines))
    if text == "":
        return False                     # nothing but comments: skipped silently, not an error
    text = _escapedchar_pre(text)
    if _re.match(r"^\$CATEGORY:", text):
        return {"qtype": "category", "category": _trim(text[10:])}
    question = {"name": False}
    if text.startswith("::"):
        text = text[2:]
        finish = text.find("::")
        if finish != -1:
            question["name"] = _clean_question_name(_escapedchar_post(text[:finish]))
            text = _trim(text[finish + 2:])
    start, finish = text.find("{"), text.find("}")
    description = False
    if start == -1 and finish == -1:
        description, answertext, length = True, "", 0
    elif start == -1 or finish == -1:
        return None
    else:
        length = finish - start
        answertext = _trim(text[start + 1:start + length])
    if description:
        questiontext = text
    elif text.endswith("}"):
        questiontext = text[:start] + text[start + length + 1:]
    else:
        questiontext = text[:start] + "_____" + text[start + length + 1:]
    gf = answertext.rfind("####")
    if gf == -1:
        generalfeedback = ""
    else:
        generalfeedback = answertext[gf + 4:]
        answertext = _trim(answertext[:gf])
    qt = _parse_text_with_format(questiontext)
    question["questiontextformat"], question["questiontext"] = qt["format"], qt["text"]
    question["generalfeedback"] = _parse_text_with_format(generalfeedback, qt["format"])["text"]
    fmt = qt["format"]
    tried = _ordering_import_from_gift(question, answertext)     # "Give plugins first try."
    if tried:
        return tried
    if description:
        question["qtype"] = "description"
        return question
    if answertext == "":
        question["qtype"] = "essay"
        return question
    if answertext[0] == "#":
        qtype = "numerical"
    elif "~" in answertext:
        qtype = "multichoice"
    elif "=" in answertext and "->" in answertext:
        qtype = "match"
    else:
        check = answertext
        if answertext.find("#") > 0:
            check = _trim(answertext[:answertext.find("#")])
        qtype = "truefalse" if check in ("T", "TRUE", "F", "FALSE") else "shortanswer"
    question["qtype"] = qtype
    if qtype == "multichoice":
        question["single"] = 1 if "=" in answertext else 0
        answers = answertext.replace("=", "~=").split("~")
        answers[0] = _trim(answers[0])
        if _empty(answers[0]):
            answers.pop(0)
        if len(answers) < 2:
            return None
        question["answer"], question["fraction"], question["feedback"] = [], [], []
        for answer in answers:
            answer = _trim(answer)
            if answer[0] == "=":
                weight, answer = 1.0, answer[1:]
            elif _WEIGHT.match(answer):
                weight, answer = _answerweightparser(answer)
            else:
                weight = 0.0
            ans, fb = _commentparser(answer, fmt)
            question["answer"].append(ans["text"])
            question["feedback"].append(fb["text"])
            question["fraction"].append(weight)
        return question
    if qtype == "match":
        answers = answertext.split("=")
        answers[0] = _trim(answers[0])
        if _empty(answers[0]):
            answers.pop(0)
        if len(answers) < 2:
            return None
        question["subquestions"], question["subanswers"] = [], []
        for answer in answers:
            answer = _trim(answer)
            marker = answer.find("->")
            if marker == -1:
                return None
            question["subquestions"].append(_parse_text_with_format(answer[:marker], fmt)["text"])
            question["subanswers"].append(_trim(_escapedchar_post(answer[marker + 2:])))
        return question
    if qtype == "truefalse":
        bits = answertext.split("#", 2)
        ans = _parse_text_with_format(_trim(bits[0]), fmt)["text"]
        question["correctanswer"] = 1 if ans in ("T", "TRUE") else 0
        return question
    if qtype == "shortanswer":
        answers = answertext.split("=")
        answers[0] = _trim(answers[0])
        if _empty(answers[0]):
            answers.pop(0)
        if len(answers) < 1:
            return None
        question["answer"], question["fraction"] = [], []
        for answer in answers:
            answer = _trim(answer)
            weight = 1.0
            if _WEIGHT.match(answer):
                weight, answer = _answerweightparser(answer)
            ans, _ = _commentparser(answer, fmt)
            question["answer"].append(ans["text"])
            question["fraction"].append(weight)
        return question
    if qtype == "numerical":
        answertext = answertext[1:]
        pos = answertext.find("~")
        if pos != -1:
            answertext = answertext[:pos]
        answers = answertext.split("=")
        answers[0] = _trim(answers[0])
        if _empty(answers[0]):
            answers.pop(0)
        if not answers:
            return None
        question["answer"], question["tolerance"], question["fraction"] = [], [], []
        for answer in answers:
            answer = _trim(answer)
            weight = 1.0
            if _WEIGHT.match(answer):
                weight, answer = _answerweightparser(answer)
            answer = _commentparser(answer, fmt)[0]["text"]
            if answer.find("..") > 0:
                lo, hi = (float(_trim(x)) for x in answer.split("..", 1))
                ans, tol = (hi + lo) / 2, hi - (hi + lo) / 2
            elif answer.find(":") > 0:
                a, t = answer.split(":", 1)
                ans, tol = float(_trim(a)), float(_trim(t))
            else:
                ans, tol = float(_trim(answer)), 0.0
            question["answer"].append(ans)
            question["tolerance"].append(tol)
            question["fraction"].append(weight)
        return question
    return None


def moodle_gift_import(text):
    """qformat_default::readquestions over the file's lines: the questions Moodle would import, in order
    (categories included as {"qtype": "category"}); None where Moodle would report an error."""
    questions, current = [], []
    for line in text.splitlines(keepends=True) + [""]:
        line = _trim(line)
        if _empty(line):
            if current:
                questions.append(moodle_gift_readquestion(current))
                current = []
        else:
            current.append(line)
    return [q for q in questions if q is not False]
