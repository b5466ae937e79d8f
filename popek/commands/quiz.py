"""`popek quiz take|grade|export|verify|list`: the course's quizzes in the terminal, graded, exported.

The exam secret comes from --secret, else $POPEK_QUIZ_SECRET, else a public practice secret. It
seeds the variants (which questions, options order, parameters); the answer files never hold it.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from popek import paths

EXIT_INCOMPLETE = 3     # take: stdin closed before the end (answers saved, rerun resumes)
EXIT_BAD_FILES = 4      # grade: some answer files could not be graded (the others were)
EXIT_DISAGREE = 5       # verify: a key disagrees with reality
MODE_FR = {"practice": "entraînement", "exam": "examen"}


def _count(text: str) -> int:
    """--count: a positive number of questions."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"nombre entier attendu, trouvé « {text} »") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"nombre de questions strictement positif attendu, trouvé {n}")
    return n


def register(sub):
    p = sub.add_parser("quiz", help="quizzes: take one, grade answer files, export (Moodle, GIFT, HTML), verify keys")
    qs = p.add_subparsers(dest="quiz_command", metavar="ACTION", required=True)

    def common(sp):
        sp.add_argument("--banks", default=None, help="folder of the quiz banks (default: popek's quizzes/)")
        sp.add_argument("--secret", default=None, help="exam secret (default: $POPEK_QUIZ_SECRET, else the practice secret)")
        sp.add_argument("--count", type=_count, default=0, help="questions per part (default: one per pool, all pools)")

    t = qs.add_parser("take", help="take a quiz in the terminal (French), resumable")
    t.add_argument("part", help="course part: virtualisation, cloud, openstack")
    t.add_argument("--student", required=True, help="student id")
    t.add_argument("--mode", choices=("practice", "exam"), default=None,
                   help="practice (default): feedback at once; exam: nothing shown until grading. "
                        "A resumed answer file keeps the mode it was started in")
    t.add_argument("--answers", default=None, help="answer file (default ./popek-quiz-PART-STUDENT.json)")
    common(t)
    t.set_defaults(func=take)

    g = qs.add_parser("grade", help="grade answer files: scores, feedback, gradebook CSV, Gradescope results.json, statistics")
    g.add_argument("answers", nargs="+", help="answer files written by `quiz take` or the HTML quiz")
    g.add_argument("--out", default=None, help="output folder (default ./popek-results/quiz)")
    g.add_argument("--details", action="store_true", help="also print every graded copy (feedback per question)")
    g.add_argument("--gradescope-visibility", default="after_published",
                   choices=("hidden", "after_due_date", "after_published", "visible"),
                   help="when students see their Gradescope results (default: after_published, once the teacher publishes)")
    common(g)
    g.set_defaults(func=grade)

    e = qs.add_parser("export", help="export the banks: Moodle XML, GIFT (teacher files, keys inside) or HTML")
    e.add_argument("--format", required=True, choices=("moodle-xml", "gift", "html"))
    e.add_argument("--part", default=None, help="only this part (default: all)")
    e.add_argument("--mode", choices=("practice", "exam"), default="practice",
                   help="HTML only: practice grades itself in the browser; exam holds no key and saves an answer file")
    e.add_argument("--student", default=None, help="HTML only: that student's variant (default: one variant shared by all)")
    e.add_argument("-o", "--output", required=True, help="file to write")
    common(e)
    e.set_defaults(func=export)

    v = qs.add_parser("verify", help="check the keys of questions marked `verify:` against this host and a cloud")
    v.add_argument("--os-cloud", default=None, help="cloud of clouds.yaml (default: $OS_CLOUD, else the embedded cloud)")
    common(v)
    v.set_defaults(func=verify)

    ls = qs.add_parser("list", help="list the parts and their questions")
    common(ls)
    ls.set_defaults(func=list_banks)


def _banks(args):
    from popek.checks.quiz.bank import BankError, load_banks
    from popek.errors import UserError
    try:
        banks = load_banks(Path(args.banks) if args.banks else paths.QUIZZES_DIR)
    except BankError as exc:
        raise UserError(f"banque de questions invalide : {exc}") from None
    if not banks:
        raise UserError(f"aucune banque de questions dans {args.banks or paths.QUIZZES_DIR}")
    return banks


def _secret(args) -> str:
    from popek.checks.quiz.variant import DEFAULT_SECRET
    return args.secret or os.environ.get("POPEK_QUIZ_SECRET") or DEFAULT_SECRET


def _part(banks, part):
    from popek.errors import UserError
    if part not in banks:
        raise UserError(f"partie inconnue « {part} » (connues : {', '.join(sorted(banks))})")
    return banks[part]


def take(args) -> int:
    from popek.checks.quiz import sheet as sheets
    from popek.checks.quiz import terminal
    from popek.checks.quiz.variant import draw
    from popek.errors import UserError

    banks = _banks(args)
    bank = _part(banks, args.part)
    if not sheets.valid_student(args.student):
        raise UserError(f"identifiant d'étudiant invalide {sheets.shorten(args.student)} "
                        "(1 à 64 lettres, chiffres, . _ @ -)")
    secret = _secret(args)
    path = Path(args.answers or f"popek-quiz-{bank.module}-{args.student}.json")
    mode = args.mode or "practice"
    try:
        if path.exists():
            try:
                sheet = sheets.load(path)
                if sheet.student != args.student or sheet.part != bank.module:
                    raise sheets.AnswerFileError(path, f"appartient à {sheet.student} / {sheet.part}")
                variant = sheets.variant_of(sheet, banks, secret, path)   # the file's variant (its own --count)
            except sheets.AnswerFileError as exc:
                raise UserError(f"impossible de reprendre : {exc}") from None
            # The file's mode wins: an exam file never becomes practice (feedback) on resume.
            mode = sheet.mode = "practice" if sheet.mode == "practice" else "exam"
            if args.mode and args.mode != mode:
                print(f"popek: reprise en mode {MODE_FR[mode]}, celui du fichier {path} (--mode {args.mode} ignoré).",
                      file=sys.stderr)
        else:
            variant = draw(bank, args.student, secret, args.count)
            sheet = sheets.new_sheet(args.student, variant, mode)
            sheets.save(sheet, path)
        if mode == "exam" and not (args.secret or os.environ.get("POPEK_QUIZ_SECRET")):
            print("Attention : aucun secret d'examen donné (--secret ou $POPEK_QUIZ_SECRET) ; "
                  "la variante est celle de l'entraînement.", file=sys.stderr)
        complete = terminal.run(variant, sheet, path, mode, sys.stdin, sys.stdout)
    except BrokenPipeError:
        raise                                   # stdout closed: popek.cli ends quietly
    except OSError as exc:
        raise UserError(f"fichier de réponses {path} : écriture impossible ({exc.strerror or exc})") from None
    return 0 if complete else EXIT_INCOMPLETE


def grade(args) -> int:
    from popek.checks.quiz import report
    from popek.errors import UserError

    banks = _banks(args)
    out = Path(args.out) if args.out else paths.results().quiz
    try:
        from popek.progress import Counter

        with Counter(len(args.answers), "copies corrigées", count_lines=False) as bar:
            result = report.grade_files(bar.iterate([Path(a) for a in args.answers]), banks, _secret(args), out,
                                        visibility=args.gradescope_visibility)
    except report.OutputNotOurs as exc:
        raise UserError(f"résultats non écrits : {exc}") from None
    except OSError as exc:
        raise UserError(f"écriture impossible dans {out} : {exc}") from None
    if args.details:
        for sub in sorted(result.submissions, key=lambda s: (s.assignment, s.student)):
            print(f"===== {sub.student} — {sub.assignment}\n{report.copy_text(sub)}")
    print(report.summary(result))
    for bad in result.errors:
        print(f"popek: fichier de réponses rejeté : {bad}", file=sys.stderr)
    return EXIT_BAD_FILES if result.errors else 0


def export(args) -> int:
    from popek.checks.quiz import export as exporter
    from popek.checks.quiz import sheet as sheets
    from popek.checks.quiz.variant import DEFAULT_SECRET
    from popek.errors import UserError

    if args.student is not None and not sheets.valid_student(args.student):
        raise UserError(f"identifiant d'étudiant invalide {sheets.shorten(args.student)} "
                        "(1 à 64 lettres, chiffres, . _ @ -)")
    if args.format == "html" and args.mode == "exam" and _secret(args) == DEFAULT_SECRET:
        raise UserError("--mode exam demande un secret d'examen (--secret ou $POPEK_QUIZ_SECRET) : avec le secret "
                        "public d'entraînement, n'importe qui recalculerait les variantes")
    banks = _banks(args)
    if args.part:
        banks = {args.part: _part(banks, args.part)}
    if args.format != "html" and (args.student or args.mode != "practice"):
        raise UserError("--mode et --student ne concernent que --format html (Moodle XML et GIFT sont des fichiers "
                        "enseignant, clés incluses, pour l'import dans la plateforme)")
    if args.format == "moodle-xml":
        text = exporter.moodle_xml(banks)
    elif args.format == "gift":
        text = exporter.gift(banks)
    else:
        if len(banks) != 1:
            raise UserError("--format html demande une partie : --part virtualisation|cloud|openstack")
        bank = next(iter(banks.values()))
        text = exporter.html(bank, _secret(args), mode=args.mode, variant_key=args.student or exporter.SHARED_KEY,
                             count=args.count, student=args.student or "")
    out = Path(args.output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"écriture impossible : {exc}") from None
    if args.format == "html":
        print(f"{out} : quiz HTML « {args.part} » ({args.mode}).")
    else:
        print(f"{out} : {exporter.question_count(banks)} questions ({args.format}, "
              f"{sum(len(b.questions) for b in banks.values())} questions de banque ; fichier enseignant, clés incluses).")
    return 0


def verify(args) -> int:
    from popek.checks.quiz import verify as verifier

    banks = _banks(args)
    findings = verifier.verify_banks(banks, verifier.Context(cloud=args.os_cloud, environ=dict(os.environ),
                                                             clouds_yaml=paths.embedded_clouds_yaml()))
    labels = {"ok": "vérifié", "disagree": "DÉSACCORD", "skip": "ignoré"}
    for f in findings:
        print(f"{labels[f.status]:<10} {f.question:<32} {f.verify:<18} {f.message}")
    n = {s: sum(f.status == s for f in findings) for s in labels}
    print(f"\n{n['ok']} vérifiée(s), {n['disagree']} en désaccord, {n['skip']} ignorée(s).")
    return EXIT_DISAGREE if n["disagree"] else 0


def list_banks(args) -> int:
    banks = _banks(args)
    for bank in banks.values():
        print(f"{bank.module} — {bank.title} : {len(bank.questions)} questions, {len(bank.pools())} pools")
        for q in bank.questions:
            print(f"  {q.id:<34} {q.type:<10} {','.join(q.claims):<12} {q.pool or ''}")
    return 0
