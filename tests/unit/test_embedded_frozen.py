"""The embedded cloud started but not answering names what is frozen in it: Keystone frozen (SIGSTOP, live
2026-12-07) made every cloud scenario say "Keystone injoignable … (ConnectTimeout)" with "28 service(s)
vivant(s)", and nothing about the frozen process, which the host's /proc shows (state T)."""
import json
import os
import signal
import subprocess

from popek.checks.localcloud import services
from popek.steps import cloud_common


def test_a_frozen_service_is_named_beside_the_live_ones(tmp_path, monkeypatch):
    (tmp_path / "run").mkdir()
    monkeypatch.setattr(cloud_common.paths, "embedded_cloud_dir", lambda: tmp_path)
    procs = {name: subprocess.Popen(["sleep", "120"], start_new_session=True) for name in ("keystone", "nova-api")}
    try:
        for name, proc in procs.items():
            (tmp_path / "run" / f"{name}.pid").write_text(
                json.dumps({"pid": proc.pid, "start": services._start_time(proc.pid)}))
        assert "gelé" not in cloud_common.embedded_started()
        os.kill(procs["keystone"].pid, signal.SIGSTOP)
        for _ in range(100):  # the stop is asynchronous
            if services.stopped_members(procs["keystone"].pid):
                break
        said = cloud_common.embedded_started()
        assert "2 service(s) vivant(s)" in said and said.endswith("arrêtés par un signal) : keystone)"), said
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
