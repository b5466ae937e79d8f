"""The measured Popek–Goldberg table (C02; its rows: C06, C08, C09) beside the course's.

Rows are the course's three techniques (emulation, hardware-assisted virtualisation, container),
columns Popek & Goldberg's three conditions (equivalence, efficiency, control). Every cell is decided
from a measurement on this host, with its evidence in French; a cell whose measurement cannot run here
(no /dev/kvm, no qemu, not root) stays empty with the reason, it is never filled from the course.

`Measurements` runs each executor of the one workload (checks/host/workload.py) at most once per
process, so that the efficiency scenarios and the table share the same figures.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from popek.checks.host import needs, workload
from popek.checks.host.timing import Ratio

TECHNIQUES = {"emulation": "Émulation", "assistee_materiel": "Virtualisation assistée par le matériel",
              "conteneur": "Conteneur"}
CONDITIONS = {"equivalence": "Équivalence", "efficacite": "Efficacité", "controle": "Contrôle"}
#: The course's table ("Les modèles de virtu"); the quiz's pgtable questions use the same keys.
COURSE = {
    "emulation": {"equivalence": "OK", "efficacite": "KO", "controle": "OK"},
    "assistee_materiel": {"equivalence": "OK", "efficacite": "OK", "controle": "OK"},
    "conteneur": {"equivalence": "KO", "efficacite": "OK", "controle": "OK"},
}
#: Popek & Goldberg's efficiency: "a statistically dominant subset of the virtual processor's
#: instructions is executed directly by the real processor". Where the guest's bytes run directly
#: (container, KVM guest), that shows as a time ratio of ×≈1: efficient means within this factor.
#: For emulation the criterion is checked directly (who executes the guest's bytes, on its code pages);
#: its time ratios (×6–8 here with the workload's mix of loads, stores, branches and flags) are judged
#: against the same factor, in the cell's evidence, on the chart and in the C07 scenarios.
EFFICIENCY_LIMIT = workload.EFFICIENCY_LIMIT
#: Which side of EFFICIENCY_LIMIT the course puts each executor of the chart. The KVM guest's ring 0
#: is not listed: it runs at native speed with VT-x/AMD-V but is emulated under PVM (information).
EXPECTED_SIDE = {"conteneur": "efficace", "KVM invité ring 3": "efficace",
                 "TCG utilisateur": "surcoût", "TCG système": "surcoût"}


class Unmeasured(Exception):
    """A measurement that cannot run on this host; the message is the French reason."""


def _require(*names: str) -> None:
    for name in names:
        reason = needs.unmet(name)
        if reason:
            raise Unmeasured(f"{name} : {reason}")


class Measurements:
    """Each executor's measurement, taken once (on first use) and shared.

    kvm_path: the KVM device for the hardware-assisted row. Every property raises Unmeasured with the
    reason when this host cannot take that measurement.
    """

    def __init__(self, kvm_path: str = "/dev/kvm"):
        self.kvm_path = kvm_path

    @functools.cached_property
    def emulation_system(self):
        """(native run, TCG system run, Ratio): a whole PC emulated by QEMU TCG."""
        _require("x86_64", "qemu-system")
        from popek.checks.host import emulation
        return emulation.against_native(emulation.run_workload_system)

    @functools.cached_property
    def emulation_user(self):
        """(native run, TCG user-mode run, Ratio)."""
        _require("x86_64", "qemu-user")
        from popek.checks.host import emulation
        return emulation.against_native(emulation.run_workload_user)

    @functools.cached_property
    def emulation_code(self):
        """(native CodeView, QEMU CodeView): who can execute the program's own code pages."""
        _require("x86_64", "qemu-user")
        from popek.checks.host import emulation
        program = emulation.x86_user_program(emulation.FOREVER)
        return emulation.observe_code(program), emulation.observe_code(program, emulation.QEMU_USER_X86)

    @functools.cached_property
    def kvm_efficiency(self):
        """vmm.Efficiency: native, guest ring 3 and guest ring 0, with the kind of KVM."""
        _require("x86_64", "kvm")
        from popek.checks.host import readiness, vmm
        return vmm.measure_efficiency(readiness.kind_of_kvm(readiness.gather()), kvm_path=self.kvm_path)

    @functools.cached_property
    def ring_minus_one(self) -> str | None:
        """Why this host has no VT-x/AMD-V under /dev/kvm (French), or None when it has ring -1."""
        from popek.checks.host import readiness
        return readiness.without_ring_minus_one(readiness.gather())

    @functools.cached_property
    def kvm_control(self):
        """vmm.ControlProbe: the exits our VMM saw."""
        _require("x86_64", "kvm")
        from popek.checks.host import vmm
        return vmm.control_probe(self.kvm_path)

    @functools.cached_property
    def container(self):
        """(native run, container run, Ratio)."""
        _require("linux", "root", "unshare")
        from popek.checks.host import containers
        return containers.against_native()

    @functools.cached_property
    def container_view(self):
        """containers.Comparison: the host's and the container's view (kernel, namespaces)."""
        _require("linux", "root", "unshare")
        from popek.checks.host import containers
        return containers.compare()

    @functools.cached_property
    def container_pids(self) -> dict:
        """containers.pids_limit(): forks refused beyond a cgroup's pids.max."""
        _require("linux", "root", "unshare", "cgroup-pids")
        from popek.checks.host import containers
        return containers.pids_limit()


@dataclass(frozen=True)
class Cell:
    """One cell: "OK", "KO", or None (not measured here), and the evidence or the reason (French)."""
    verdict: str | None
    evidence: str


@dataclass
class Table:
    cells: dict[str, dict[str, Cell]]
    ratios: list[Ratio] = field(default_factory=list)   # every efficiency figure behind the table

    def verdicts(self) -> dict[str, dict[str, str | None]]:
        return {t: {c: cell.verdict for c, cell in row.items()} for t, row in self.cells.items()}

    def disagreements(self, reference: dict = COURSE) -> list[tuple[str, str, str, str]]:
        """(technique, condition, measured, reference) for every measured cell that differs."""
        return [(t, c, cell.verdict, reference[t][c]) for t, row in self.cells.items()
                for c, cell in row.items() if cell.verdict is not None and cell.verdict != reference[t][c]]

    def unmeasured(self) -> list[tuple[str, str, str]]:
        return [(t, c, cell.evidence) for t, row in self.cells.items() for c, cell in row.items()
                if cell.verdict is None]

    def complete_rows(self) -> list[str]:
        """The techniques whose three cells were all measured here."""
        return [t for t, row in self.cells.items() if all(cell.verdict is not None for cell in row.values())]

    def row_unmeasured(self, technique: str) -> list[tuple[str, str]]:
        """(condition, reason) for every cell of `technique`'s row that could not be measured here."""
        return [(c, cell.evidence) for c, cell in self.cells[technique].items() if cell.verdict is None]

    def row_incomplete(self, technique: str) -> str:
        """Why `technique`'s row cannot be checked here (French), or "" if its three cells were measured."""
        by_reason: dict[str, list[str]] = {}
        for c, reason in self.row_unmeasured(technique):
            by_reason.setdefault(reason, []).append(CONDITIONS[c])
        if not by_reason:
            return ""
        return (f"ligne « {TECHNIQUES[technique]} » incomplète : "
                + " ; ".join(f"{', '.join(conds)} : {reason}" for reason, conds in by_reason.items()))

    def row_disagreements(self, technique: str, reference: dict = COURSE) -> list[tuple[str, str, str, str]]:
        """disagreements() restricted to `technique`'s row."""
        return [d for d in self.disagreements(reference) if d[0] == technique]

    def describe(self, disagreements) -> str:
        """Disagreements (as returned by disagreements()) in French, one a line, with their evidence."""
        return "\n".join(f"{TECHNIQUES[t]} / {CONDITIONS[c]} : mesuré {got}, le cours dit {want} — "
                         f"{self.cells[t][c].evidence}" for t, c, got, want in disagreements)

    def text(self) -> str:
        """The table for a terminal: measured verdict, the course's in brackets, then the evidence."""
        width = max(len(v) for v in TECHNIQUES.values())
        lines = [f"{'':<{width}}  " + "  ".join(f"{v:<16}" for v in CONDITIONS.values()),
                 f"{'':<{width}}  " + "  ".join(f"{'mesuré (cours)':<16}" for _ in CONDITIONS)]
        for t, label in TECHNIQUES.items():
            cells = [f"{(self.cells[t][c].verdict or '—') + ' (' + COURSE[t][c] + ')':<16}" for c in CONDITIONS]
            lines.append(f"{label:<{width}}  " + "  ".join(cells))
        lines.append("")
        for t, label in TECHNIQUES.items():
            for c, cl in CONDITIONS.items():
                lines.append(f"- {label} / {cl} : {self.cells[t][c].evidence}")
        return "\n".join(lines)


def technique(label: str) -> str:
    """The key of a technique named as in the report ("émulation", "conteneur"…, any case)."""
    for key, name in TECHNIQUES.items():
        if name.casefold() == label.casefold():
            return key
    raise KeyError(f"technique inconnue : {label!r} (connues : {', '.join(TECHNIQUES.values())})")


def _cell(fn) -> Cell:
    try:
        return fn()
    except Unmeasured as exc:
        return Cell(None, f"non mesuré ici — {exc}")


def _efficiency(ratio: Ratio, what: str) -> Cell:
    ok = workload.not_near_native(ratio, EFFICIENCY_LIMIT) is None
    return Cell("OK" if ok else "KO",
                f"{what} : ×{ratio.value:.2f} par rapport au natif ({ratio.subject_ns:.2f} contre "
                f"{ratio.reference_ns:.2f} ns par itération ; seuil ×{EFFICIENCY_LIMIT:g})")


def build(m: Measurements) -> Table:
    """Decide every cell from the measurements `m` (taking those not yet taken)."""
    def emu_equivalence():
        native, emu, _ = m.emulation_system
        return Cell("OK" if emu.result == native.result else "KO",
                    f"la charge de travail donne {emu.result:#x} sous QEMU TCG (PC entier émulé) et "
                    f"{native.result:#x} sur le processeur, référence pour n = {emu.iterations}")

    def emu_efficiency():
        native, qemu = m.emulation_code
        direct = qemu.program_executable
        figures, hidden = [], []
        for get in (lambda: m.emulation_user[2], lambda: m.emulation_system[2]):
            try:
                r = get()
            except Unmeasured:
                continue
            figures.append(f"{r.subject} ×{r.value:.2f}")
            if workload.not_heavy_overhead(r, EFFICIENCY_LIMIT):
                hidden.append(r.subject)
        return Cell("OK" if direct else "KO",
                    ("sous QEMU, la page de code du programme invité n'est pas exécutable "
                     f"({' '.join(x.perms for x in qemu.program_mappings)}) alors qu'en natif elle l'est "
                     f"({' '.join(x.perms for x in native.program_mappings)}) : le processeur n'exécute pas les "
                     f"instructions de l'invité, il exécute leur traduction par TCG "
                     f"({sum(x.size for x in qemu.executable_anonymous) >> 20} Mio de code traduit)"
                     if not direct else "sous QEMU, le processeur exécute directement le code de l'invité")
                    + (f" ; temps relatif au natif : {', '.join(figures)} (seuil ×{EFFICIENCY_LIMIT:g} : "
                       + (f"sous le seuil pour {', '.join(hidden)}, cette mesure ne montre pas le surcoût"
                          if hidden else "au-dessus, le surcoût de la traduction se voit") + ")"
                       if figures else ""))

    def emu_control():
        _, emu, _ = m.emulation_system
        got = emu.result is not None
        return Cell("OK" if got else "KO",
                    "l'invité rend son résultat par une instruction OUT sur un port d'E/S ; c'est QEMU, "
                    "pas le matériel, qui exécute cette E/S et la reçoit" if got else
                    "QEMU n'a reçu aucune sortie de l'invité")

    def hw_equivalence():
        eff = m.kvm_efficiency
        ok = eff.equivalent(eff.ring3) and eff.equivalent(eff.native)
        return Cell("OK" if ok else "KO",
                    f"la charge de travail donne {eff.ring3.result:#x} dans l'invité KVM ({eff.kind}, ring 3) et "
                    f"{eff.native.result:#x} sur le processeur (n = {eff.ring3.iterations})")

    def hw_efficiency():
        # Ring -1 exists so that the guest's *kernel* runs unmodified at native speed: the cell is OK
        # only when both the guest's user code (ring 3) and its kernel code (ring 0) run near native,
        # and it is measured only where KVM rests on VT-x/AMD-V (a PVM KVM is not that technique).
        eff = m.kvm_efficiency
        user = _efficiency(eff.ratio3, "invité KVM, code utilisateur (ring 3)")
        kernel = _efficiency(eff.ratio0, "invité KVM, code noyau (ring 0)")
        missing = m.ring_minus_one
        if missing:
            raise Unmeasured(f"{missing} ; mesuré pour information avec ce KVM : {user.evidence} ; "
                             f"{kernel.evidence}")
        ok = user.verdict == kernel.verdict == "OK"
        return Cell("OK" if ok else "KO", f"{user.evidence} ; {kernel.evidence}. {eff.explanation}")

    def hw_control():
        probe = m.kvm_control
        seen = [k for k, ex in (("OUT", probe.out), ("IN", probe.in_), ("MMIO", probe.mmio_write), ("HLT", probe.hlt)) if ex]
        ok = len(seen) == 4 and probe.in_value_seen is not None
        return Cell("OK" if ok else "KO",
                    f"notre VMM a reçu les sorties {', '.join(seen) or 'aucune'} de l'invité et la valeur qu'il "
                    f"a fournie à l'IN est arrivée dans l'invité ({probe.in_value_seen and hex(probe.in_value_seen)})")

    def ct_equivalence():
        view = m.container_view
        same = view.same_kernel
        return Cell("KO" if same else "OK",
                    f"le conteneur voit le noyau de l'hôte ({view.container['kernel_release']}) : il ne peut "
                    "pas faire tourner un autre système d'exploitation, seulement des processus isolés "
                    "(le calcul, lui, donne le même résultat)" if same else
                    "le conteneur voit un autre noyau que l'hôte")

    def ct_efficiency():
        return _efficiency(m.container[2], "charge de travail dans le conteneur")

    def ct_control():
        out = m.container_pids
        refused = out.get("errno_name") == "EAGAIN"
        return Cell("OK" if refused else "KO",
                    f"cgroup pids.max = {out['limit']} (cgroup v{out['cgroup_version']}) : le noyau refuse le "
                    f"fork suivant ({out.get('errno_name') or 'aucun refus'}) après {out['forks']} fork réussis")

    rules = {"emulation": (emu_equivalence, emu_efficiency, emu_control),
             "assistee_materiel": (hw_equivalence, hw_efficiency, hw_control),
             "conteneur": (ct_equivalence, ct_efficiency, ct_control)}
    cells = {t: dict(zip(CONDITIONS, (_cell(f) for f in fns))) for t, fns in rules.items()}
    return Table(cells, efficiency_ratios(m))


def efficiency_ratios(m: Measurements) -> list[Ratio]:
    """Every executor against native, for the chart: those this host can measure."""
    out = []
    for get in (lambda: m.container[2], lambda: m.kvm_efficiency.ratio3, lambda: m.kvm_efficiency.ratio0,
                lambda: m.emulation_user[2], lambda: m.emulation_system[2]):
        try:
            out.append(get())
        except Unmeasured:
            continue
    return out


def efficiency_disagreements(ratios: list[Ratio], bound: float = EFFICIENCY_LIMIT) -> list[str]:
    """French messages for every ratio on the wrong side of `bound` (see EXPECTED_SIDE): a container
    or KVM guest user code not within `bound` of native, an emulator not at least `bound` times slower."""
    out = []
    for r in ratios:
        side = EXPECTED_SIDE.get(r.subject)
        why = (workload.not_near_native(r, bound) if side == "efficace"
               else workload.not_heavy_overhead(r, bound) if side == "surcoût" else None)
        if why:
            out.append(why)
    return out


def chart_svg(ratios: list[Ratio], title: str = "Efficacité : temps par itération, relatif au natif") -> str:
    """A horizontal bar chart of `ratios` (natif = 1) on a log scale, as a standalone SVG document."""
    rows = [("natif", 1.0)] + [(r.subject, r.value) for r in ratios]
    top = max(10.0, max(v for _, v in rows))
    decades = max(1, math.ceil(math.log10(top)))
    left, bar_w, row_h, head = 190, 520, 30, 64
    height = head + row_h * len(rows) + 40

    def x(v: float) -> float:
        return left + bar_w * max(0.0, math.log10(max(v, 1e-3)) + 1) / (decades + 1)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + bar_w + 110}" height="{height}" '
             'font-family="sans-serif" font-size="13">',
             f'<text x="10" y="22" font-size="15" font-weight="bold">{title}</text>',
             '<text x="10" y="40" fill="#555">échelle logarithmique ; 1 = vitesse du processeur sans virtualisation</text>']
    for d in range(-1, decades + 1):
        gx = x(10.0 ** d)
        parts.append(f'<line x1="{gx:.1f}" y1="{head}" x2="{gx:.1f}" y2="{height - 30}" stroke="#ddd"/>')
        parts.append(f'<text x="{gx:.1f}" y="{height - 14}" text-anchor="middle" fill="#555">×{10.0 ** d:g}</text>')
    lx = x(EFFICIENCY_LIMIT)
    parts.append(f'<line x1="{lx:.1f}" y1="{head}" x2="{lx:.1f}" y2="{height - 30}" stroke="#555" '
                 'stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{lx + 4:.1f}" y="{head - 4}" fill="#555">seuil ×{EFFICIENCY_LIMIT:g}</text>')
    for i, (name, value) in enumerate(rows):
        y = head + i * row_h
        colour = "#2e7d32" if value < EFFICIENCY_LIMIT else "#c62828"
        parts.append(f'<text x="{left - 8}" y="{y + 19}" text-anchor="end">{name}</text>')
        parts.append(f'<rect x="{left}" y="{y + 6}" width="{max(1.0, x(value) - left):.1f}" height="{row_h - 10}" fill="{colour}"/>')
        parts.append(f'<text x="{x(value) + 6:.1f}" y="{y + 19}">×{value:.3g}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
