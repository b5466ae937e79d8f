"""Containers: cgroup discovery and counters (on fake cgroup trees), the host/container comparison, and
the fork/pipe machinery of run_in_container with no namespace (flags=0 needs no privilege)."""
import time

import pytest

from popek.checks.host import containers


def _mounts(tmp_path, text):
    path = tmp_path / "mounts"
    path.write_text(text)
    return str(path)


def test_v1_controller_found_in_mount_options(tmp_path):
    mounts = _mounts(tmp_path, "cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0\n"
                               "cgroup /sys/fs/cgroup/cpu\\040x cgroup rw,cpu 0 0\n")
    assert containers.find_hierarchy("pids", mounts) == containers.Hierarchy("pids", 1, "/sys/fs/cgroup/pids")
    assert containers.find_hierarchy("cpu", mounts).root == "/sys/fs/cgroup/cpu x"
    assert containers.find_hierarchy("memory", mounts) is None


def test_v2_controller_found_in_cgroup_controllers(tmp_path):
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    mounts = _mounts(tmp_path, f"cgroup2 {root} cgroup2 rw,nsdelegate 0 0\n")
    assert containers.find_hierarchy("memory", mounts) == containers.Hierarchy("memory", 2, str(root))
    assert containers.find_hierarchy("hugetlb", mounts) is None


def test_hybrid_host_prefers_the_v1_hierarchy_holding_the_controller(tmp_path):
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text("hugetlb\n")
    mounts = _mounts(tmp_path, f"cgroup2 {root} cgroup2 rw 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n")
    assert containers.find_hierarchy("memory", mounts).version == 1
    assert containers.find_hierarchy("hugetlb", mounts).version == 2


def test_cgroup_counters_parse_keyed_files(tmp_path):
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    cg = containers.Cgroup(str(tmp_path), containers.Hierarchy("memory", 1, str(tmp_path)))
    assert cg.counters("memory.oom_control") == {"oom_kill_disable": 0, "under_oom": 0, "oom_kill": 1}
    assert cg.counters("absent") == {}


def test_comparison_lists_separate_namespaces_and_compares_kernels():
    host = {"namespaces": {"pid": "pid:[1]", "net": "net:[2]"}, "kernel_release": "6.1", "kernel_version": "#1"}
    inside = {"namespaces": {"pid": "pid:[9]", "net": "net:[2]"}, "kernel_release": "6.1", "kernel_version": "#1"}
    cmp = containers.Comparison(host, inside)
    assert cmp.separate_namespaces == ["pid"] and cmp.same_kernel
    assert not containers.Comparison(host, dict(inside, kernel_version="#2")).same_kernel


def test_remove_cgroup_tolerates_already_gone(tmp_path):
    containers.remove_cgroup(str(tmp_path / "never-created"))


# --- run_in_container without namespaces: the same fork / pipe / JSON path, unprivileged ------------
def test_value_comes_back_from_the_inner_process():
    import os
    out = containers.run_in_container(lambda: {"pid": os.getpid(), "x": [1, 2]}, flags=0)
    assert out["x"] == [1, 2] and out["pid"] != os.getpid()


def test_exception_inside_becomes_container_error():
    def boom():
        raise ValueError("raté")
    with pytest.raises(containers.ContainerError, match="ValueError: raté"):
        containers.run_in_container(boom, flags=0)


def test_a_container_that_hangs_is_killed_at_the_timeout():
    t0 = time.monotonic()
    with pytest.raises(containers.ContainerError, match="n'a pas répondu"):
        containers.run_in_container(lambda: time.sleep(30), flags=0, timeout=0.5)
    assert time.monotonic() - t0 < 5
