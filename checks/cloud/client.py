"""The cloud's REST APIs spoken two more ways: raw HTTP with `requests` (C17) and the official
`openstack` client (C33, C36), to compare with what openstacksdk sees."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional


def rest_get(conn, service: str, path: str) -> tuple[int, dict]:
    """GET <endpoint of `service`><path> with the token in X-Auth-Token, like `curl` would.

    service: an SDK proxy name (compute, network, image…). Returns (HTTP status, JSON body)."""
    import requests

    from popek.checks.secrets import REDACT

    endpoint = getattr(conn, service).get_endpoint().rstrip("/")
    token = conn.session.get_token()
    REDACT.add(token)
    response = requests.get(endpoint + path, headers={"X-Auth-Token": token, "Accept": "application/json"}, timeout=30)
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body


def config_file_for(files, cloud_name: str) -> Optional[Path]:
    """The first clouds.yaml among `files` that defines `cloud_name` (the one the SDK used)."""
    import yaml

    for path in files:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if cloud_name in (data.get("clouds") or {}):
            return Path(path)
    return None


def cli_env(cloud, environ: Mapping[str, str]) -> dict:
    """Environment for the `openstack` client so that it talks to the same cloud with the same
    credentials (read by the client itself from clouds.yaml or the openrc; never on its command line)."""
    env = dict(environ)
    if cloud.choice.kind == "openrc":
        return env
    for key in [k for k in env if k.startswith("OS_")]:
        del env[key]
    path = config_file_for(cloud.choice.files, cloud.choice.cloud)
    if path is not None:
        env["OS_CLIENT_CONFIG_FILE"] = str(path)
    env["OS_CLOUD"] = cloud.choice.cloud
    return env


def openstack_cli(cloud, args: list[str], environ: Mapping[str, str], executable: Optional[str] = None,
                  timeout: float = 120) -> list | dict:
    """Run `openstack <args> -f json` (python-openstackclient) and return its parsed JSON output.

    executable: the client (default: the one beside this Python, i.e. popek's venv)."""
    exe = executable or str(Path(sys.executable).parent / "openstack")
    result = subprocess.run([exe, *args, "-f", "json"], env=cli_env(cloud, environ), capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        from popek.checks.secrets import REDACT
        raise AssertionError(f"openstack {' '.join(args)} a échoué ({result.returncode}) : {REDACT(result.stderr.strip())[-600:]}")
    return json.loads(result.stdout or "[]")




def consistent_pair(first, second, tries: int = 4):
    """(first(), second()) taken while `first` did not change around `second` (first, second, first
    again): other workers may create or delete resources in the same project meanwhile (pytest-xdist).

    Returns the last pair; the caller compares them. first/second: callables returning comparable lists."""
    for _ in range(tries):
        before = first()
        other = second()
        if first() == before:
            break
    return before, other
