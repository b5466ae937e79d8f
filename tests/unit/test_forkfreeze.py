"""The cloud venv's fork-time gc.freeze (checks/localcloud/forkfreeze.py), shipped in the driver wheel."""
import subprocess
import sys
import zipfile
from pathlib import Path

from popek.checks.localcloud import install

FORKFREEZE = Path(install.__file__).with_name("forkfreeze.py")

#: In a fresh interpreter (the hook must not freeze pytest's own heap): install the hook, fork twice, and
#: report the frozen counts seen before, in the first child, after the first fork and after the second.
PROBE = f"""
import gc, os, runpy, sys
hook = runpy.run_path({str(FORKFREEZE)!r})
before = gc.get_freeze_count()
hook["install"]()
def child():
    pid = os.fork()
    if pid == 0:
        os._exit(0 if gc.get_freeze_count() > 0 else 3)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
code = child()
first = gc.get_freeze_count()
garbage = [[i] for i in range(1000)]  # new containers after the first fork
code2 = child()
print(before, code, first > 0, gc.get_freeze_count() == first, code2)
"""


def test_the_first_fork_freezes_the_heap_and_later_forks_do_not():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "0", "True", "True", "0"], out


def test_the_wheel_installs_the_hook_for_every_interpreter_of_the_venv(tmp_path):
    wheel = install.alwaysbind_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        pth = zf.read("popek_forkfreeze.pth").decode()
        module = zf.read("popek_forkfreeze.py").decode()
        record = zf.read(f"{install.DRIVER_DIST}-{install.DRIVER_VERSION}.dist-info/RECORD").decode()
    assert pth.startswith("import popek_forkfreeze;") and "install()" in pth  # site.py runs "import" lines
    assert "def install(" in module and "popek_forkfreeze.pth" in record


#: gc.get_freeze_count() walks the whole permanent generation: counted in a fresh interpreter over three forks.
COST_PROBE = f"""
import gc, os, runpy
hook = runpy.run_path({str(FORKFREEZE)!r})
counted = []
real = gc.get_freeze_count
gc.get_freeze_count = lambda: counted.append(1) or real()
hook["install"]()
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
gc.get_freeze_count = real
print(len(counted), gc.get_freeze_count() > 0)
"""


def test_only_the_first_fork_looks_at_the_frozen_generation():
    out = subprocess.run([sys.executable, "-c", COST_PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "True"], out
