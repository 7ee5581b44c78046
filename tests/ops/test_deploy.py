"""The deploy recipes stay true to the CLI: every variable they set is a bemidb setting, the example env file
resolves without error, the commands they start exist, and systemd accepts the units as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest

from bemidb import config
from tests.support.commands import REPO, run_bemidb

DEPLOY = REPO / "examples" / "deploy"
ENV_NAMES = {setting.env for setting in config.SETTINGS.values()}
NOT_BEMIDB = {"SHIV_ROOT", "PYTHONDONTWRITEBYTECODE"}  # read by the pyz launcher and Python themselves


def _env_file() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "bemidb.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def _variables_everywhere() -> dict[str, set[str]]:
    fly = tomllib.loads((DEPLOY / "fly.toml").read_text())
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    docker_env = re.search(r"^ENV (.*?)(?:\n(?!\s))", dockerfile, re.S | re.M).group(1)
    units = "".join((DEPLOY / name).read_text() for name in ("bemidb.service", "bemidb-sync.service"))
    systemd = {name for line in re.findall(r"^Environment=(.*)$", units, re.M)
               for name in re.findall(r"([A-Z_]+)=", line)}
    return {"bemidb.env": set(_env_file()), "fly.toml": set(fly["env"]),
            "Dockerfile": set(re.findall(r"([A-Z_]+)=", docker_env)), "systemd": systemd}


def test_every_variable_is_a_bemidb_setting():
    for where, names in _variables_everywhere().items():
        assert names, where
        unknown = names - ENV_NAMES - NOT_BEMIDB
        assert not unknown, f"{where} sets {unknown}, which bemidb does not read"


def test_example_env_file_resolves_for_every_command():
    env = _env_file()
    for names in (config.STORAGE + config.SERVER, config.STORAGE + config.SYNC_POSTGRES):
        cfg = config.resolve(None, names, env=env)
        assert cfg.uses_s3 and cfg.catalog_database_url.startswith("postgresql://")
    assert config.resolve(None, config.STORAGE, env=env).s3_endpoint_url.endswith(".r2.cloudflarestorage.com")


def test_server_port_is_the_same_in_fly_dockerfile_and_settings():
    fly = tomllib.loads((DEPLOY / "fly.toml").read_text())
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    port = fly["services"][0]["internal_port"]
    assert str(port) == fly["env"]["BEMIDB_PORT"] == str(config.SETTINGS["port"].default)
    assert f"EXPOSE {port}" in dockerfile and f"BEMIDB_PORT={port}" in dockerfile
    assert fly["build"]["dockerfile"] == "examples/deploy/Dockerfile"
    assert fly["services"][0]["protocol"] == "tcp"  # raw Postgres protocol; Fly's TLS handler would break it


def test_commands_the_recipes_start_exist():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    commands = [re.search(r'^CMD \["(\w+)"\]', dockerfile, re.M).group(1).split()]
    for name in ("bemidb.service", "bemidb-sync.service"):
        exec_start = re.search(r"^ExecStart=\S+ /opt/bemidb/bemidb.pyz (.*)$", (DEPLOY / name).read_text(), re.M)
        commands.append(exec_start.group(1).split())
    assert ["serve"] in commands and ["sync", "postgres"] in commands
    for command in commands:
        result = run_bemidb(*command, "--help")
        assert result.returncode == 0, (command, result.stderr)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_units():
    if not shutil.which("python3.11", path="/usr/bin"):
        pytest.skip("/usr/bin/python3.11 (the units' interpreter) is not installed here")
    result = subprocess.run(["systemd-analyze", "verify", "bemidb.service", "bemidb-sync.service",
                             "bemidb-sync.timer"], cwd=DEPLOY, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
