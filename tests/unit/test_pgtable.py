"""Decision logic of the measured Popek–Goldberg table, on fake measurements (pure logic)."""
import types

from popek.checks.host import pgtable
from popek.checks.host.workload import WorkloadRun, reference
from popek.checks.timing import Ratio, Timing


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
        eff = types.SimpleNamespace(native=native, ring3=run("KVM invité ring 3"), explanation="…",
                                    ratio3=Ratio("KVM invité ring 3", "natif", 1.01, 1.0),
                                    ratio0=Ratio("KVM invité ring 0", "natif", 1.2, 1.0))
        eff.equivalent = lambda r: r.result == reference(r.iterations)
        self.kvm_efficiency = eff
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
