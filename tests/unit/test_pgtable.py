"""Decision logic of the measured Popek–Goldberg table, on fake measurements (pure logic)."""
import types

import pytest

from popek.checks.host import pgtable
from popek.checks.host.workload import WorkloadRun, reference
from popek.checks.host.timing import Ratio, Timing


def run(executor, n=1000, result=None, ns=1.0):
    return WorkloadRun(executor, n, reference(n) if result is None else result, Timing((ns,)))


class FakeMeasurements:
    """Measurements as a hardware-assisted host would give them; override per test."""
    def __init__(self, **over):
        native = run("natif")
        self.emulation_system = (native, run("TCG système"), Ratio("TCG système", "natif", 3.0, 1.0))
        self.emulation_user = (native, run("TCG utilisateur"), Ratio("TCG utilisateur", "natif", 2.0, 1.0))
        mapping = types.SimpleNamespace(perms="r--p", size=64 << 20)
        self.emulation_code = (types.SimpleNamespace(program_executable=True, program_mappings=[types.SimpleNamespace(perms="r-xp")]),
                               types.SimpleNamespace(program_executable=False, program_mappings=[mapping],
                                                     executable_anonymous=[mapping]))
        eff = types.SimpleNamespace(native=native, ring3=run("KVM invité ring 3"), explanation="…", kind="VT-x",
                                    ratio3=Ratio("KVM invité ring 3", "natif", 1.01, 1.0),
                                    ratio0=Ratio("KVM invité ring 0", "natif", 1.2, 1.0))
        eff.equivalent = lambda r: r.result == reference(r.iterations)
        self.kvm_efficiency = eff
        self.ring_minus_one = None
        self.kvm_control = types.SimpleNamespace(out=1, in_=1, mmio_write=1, hlt=1, in_value_seen=0xC0FFEE42)
        self.container = (native, run("conteneur"), Ratio("conteneur", "natif", 1.0, 1.0))
        self.container_view = types.SimpleNamespace(same_kernel=True, container={"kernel_release": "6.1"})
        self.container_pids = {"errno_name": "EAGAIN", "limit": 16, "cgroup_version": 2, "forks": 15}
        self.__dict__.update(over)


def test_a_host_that_behaves_like_the_course_gives_the_courses_table():
    table = pgtable.build(FakeMeasurements())
    assert table.verdicts() == pgtable.COURSE
    assert table.disagreements() == [] and table.unmeasured() == []


def test_a_guest_computing_something_else_breaks_equivalence():
    bad = FakeMeasurements()
    bad.kvm_efficiency.ring3 = run("KVM invité ring 3", result=42)
    table = pgtable.build(bad)
    assert table.cells["assistee_materiel"]["equivalence"].verdict == "KO"
    assert ("assistee_materiel", "equivalence", "KO", "OK") in table.disagreements()


def test_slow_direct_execution_is_not_efficient():
    slow = FakeMeasurements(container=(run("natif"), run("conteneur"), Ratio("conteneur", "natif", 5.0, 1.0)))
    assert pgtable.build(slow).cells["conteneur"]["efficacite"].verdict == "KO"


def test_emulation_efficiency_is_decided_on_who_executes_the_guests_bytes_not_on_time():
    fast_tcg = FakeMeasurements(emulation_user=(run("natif"), run("TCG utilisateur"), Ratio("TCG utilisateur", "natif", 1.0, 1.0)))
    cell = pgtable.build(fast_tcg).cells["emulation"]["efficacite"]
    assert cell.verdict == "KO" and "n'est pas exécutable" in cell.evidence and "×1.00" in cell.evidence


def test_a_cell_that_cannot_be_measured_stays_empty_with_its_reason():
    class NoKvm(FakeMeasurements):
        @property
        def kvm_efficiency(self):
            raise pgtable.Unmeasured("kvm : pas de /dev/kvm")
        @kvm_efficiency.setter
        def kvm_efficiency(self, value):
            pass
    table = pgtable.build(NoKvm())
    cell = table.cells["assistee_materiel"]["equivalence"]
    assert cell.verdict is None and "pas de /dev/kvm" in cell.evidence
    assert table.disagreements() == []  # an unmeasured cell is never counted as agreeing or not
    assert ("assistee_materiel", "efficacite") in {(t, c) for t, c, _ in table.unmeasured()}


def test_chart_is_svg_with_one_bar_per_executor_plus_native():
    svg = pgtable.chart_svg([Ratio("conteneur", "natif", 1.0, 1.0), Ratio("KVM invité ring 0", "natif", 2100.0, 1.0)])
    assert svg.startswith("<svg") and svg.count("<rect") == 3 and "×2.1e+03" in svg


def test_emulation_ratios_are_judged_against_the_same_threshold_as_the_chart():
    cell = pgtable.build(FakeMeasurements()).cells["emulation"]["efficacite"]
    assert "TCG utilisateur ×2.00, TCG système ×3.00" in cell.evidence and "au-dessus" in cell.evidence
    fast_tcg = FakeMeasurements(emulation_user=(run("natif"), run("TCG utilisateur"), Ratio("TCG utilisateur", "natif", 1.0, 1.0)))
    cell = pgtable.build(fast_tcg).cells["emulation"]["efficacite"]
    assert "sous le seuil pour TCG utilisateur" in cell.evidence


def test_a_row_is_complete_only_when_its_three_cells_were_measured():
    class NoContainer(FakeMeasurements):
        def __getattribute__(self, name):
            if name.startswith("container"):
                raise pgtable.Unmeasured("root : il faut être root (uid 0) pour cette vérification")
            return super().__getattribute__(name)
    table = pgtable.build(NoContainer())
    assert table.complete_rows() == ["emulation", "assistee_materiel"]
    assert table.row_incomplete("emulation") == ""
    why = table.row_incomplete("conteneur")
    assert why.startswith("ligne « Conteneur » incomplète : Équivalence, Efficacité, Contrôle : non mesuré ici")
    assert why.count("il faut être root") == 1              # one reason, named once for its three cells
    assert table.row_disagreements("conteneur") == []


def test_a_row_disagreement_is_reported_for_that_row_only():
    bad = FakeMeasurements(container_view=types.SimpleNamespace(same_kernel=False, container={"kernel_release": "x"}))
    table = pgtable.build(bad)
    assert table.row_disagreements("conteneur") == [("conteneur", "equivalence", "OK", "KO")]
    assert table.row_disagreements("emulation") == []
    assert "Conteneur / Équivalence : mesuré OK, le cours dit KO" in table.describe(table.row_disagreements("conteneur"))


def test_techniques_are_named_as_in_the_report():
    assert pgtable.technique("Émulation") == "emulation" == pgtable.technique("émulation")
    assert pgtable.technique("Virtualisation assistée par le matériel") == "assistee_materiel"
    with pytest.raises(KeyError):
        pgtable.technique("paravirtualisation")


@pytest.mark.parametrize("subject, value, wrong", [
    ("conteneur", 1.01, False), ("conteneur", 2.5, True),
    ("KVM invité ring 3", 1.0, False), ("KVM invité ring 3", 3.0, True),
    ("TCG utilisateur", 5.8, False), ("TCG utilisateur", 0.99, True),
    ("TCG système", 7.7, False), ("TCG système", 1.03, True),
    ("KVM invité ring 0", 15000.0, False), ("KVM invité ring 0", 1.0, False),  # information only
])
def test_each_executor_is_expected_on_the_courses_side_of_the_threshold(subject, value, wrong):
    found = pgtable.efficiency_disagreements([Ratio(subject, "natif", value, 1.0)])
    assert bool(found) == wrong
    if wrong:
        assert f"×{value:.2f}" in found[0] and "×2" in found[0]


def test_chart_draws_the_threshold():
    svg = pgtable.chart_svg([Ratio("TCG système", "natif", 7.7, 1.0)])
    assert f"seuil ×{pgtable.EFFICIENCY_LIMIT:g}" in svg and 'stroke-dasharray' in svg
