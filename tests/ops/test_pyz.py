"""bemidb.pyz as a user runs it: the right Python and CPU only (refused before unpacking), HOME unset, a
read-only folder, an unprivileged user, and a build that gives the same bytes twice.

Uses ./bemidb.pyz when it holds this checkout's sources (CI builds it first for the quickstart), otherwise
builds one into a temp folder (about a minute).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import pwd
import shutil
import subprocess
import tempfile
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from bemidb.cli import launch
from tests.support.commands import REPO

OTHER_PYTHONS = {"3.10": "/root/.pyenv/versions/3.10.13/bin/python", "3.12": "/root/.pyenv/versions/3.12.1/bin/python"}
SYSTEM_PYTHON = "/usr/bin/python3.11"  # Debian's, usable by any user (the pyenv ones live under /root)


def _sources_match(pyz: Path) -> bool:
    """The archive's bemidb package is byte-for-byte this checkout's."""
    try:
        with zipfile.ZipFile(pyz) as archive:
            packed = {name[len("site-packages/"):]: archive.read(name) for name in archive.namelist()
                      if name.startswith("site-packages/bemidb/") and name.endswith(".py")}
    except (OSError, zipfile.BadZipFile):
        return False
    here = {str(path.relative_to(REPO)): path.read_bytes() for path in (REPO / "bemidb").rglob("*.py")}
    return packed == here


@pytest.fixture(scope="module")
def pyz(tmp_path_factory) -> Path:
    built = REPO / "bemidb.pyz"
    if built.exists() and _sources_match(built):
        return built
    target = tmp_path_factory.mktemp("pyz") / "bemidb.pyz"
    result = subprocess.run([str(REPO / "build_zipapp.sh"), "-o", str(target)], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr
    return target


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_", "SHIV_"))}
    env.update(extra)
    return env


def test_archive_records_what_it_was_built_for_and_no_build_paths(pyz):
    with zipfile.ZipFile(pyz) as archive:
        facts = json.loads(archive.read("bemidb_build.json"))
        build_id = json.loads(archive.read("environment.json"))["build_id"]  # shiv's: names its unpacked copy
        names = archive.namelist()
        assert b"bemidb_pyz" in archive.read("__main__.py")
        assert archive.read("bemidb_pyz.py") == (REPO / "bemidb" / "cli" / "launch.py").read_bytes()
    built_with = subprocess.run(["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                capture_output=True, text=True, check=True).stdout.strip()  # the build's python3
    assert facts == {"python": built_with, "machine": platform.machine(), "system": platform.system(),
                     "build_id": build_id}
    # pip's path-dependent files are left out: they would make two builds in two folders differ
    assert not [n for n in names if n.startswith("site-packages/bin/") or n.endswith("direct_url.json")]
    pins = dict(line.split("==") for line in (REPO / "zipapp-constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for dist in ("duckdb", "pyarrow", "pyiceberg"):
        assert f"site-packages/{dist}-{pins[dist]}.dist-info/METADATA" in names


def test_version_prints_bundled_dependency_versions(pyz):
    result = subprocess.run([str(pyz), "version"], capture_output=True, text=True, timeout=600,
                            env=_clean_env(), cwd=pyz.parent)
    assert result.returncode == 0, result.stderr
    pins = (REPO / "zipapp-constraints.txt").read_text()
    for line in result.stdout.splitlines()[2:]:
        name, version = line.split()
        assert f"{name}=={version}" in pins, line


def test_later_runs_find_the_unpacked_copy_without_shivs_bootstrap(pyz, tmp_path):
    """The first run unpacks (shiv); later ones go straight to shiv's folder for this build. A copy of the
    pyz under another name, or SHIV_FORCE_EXTRACT, goes through shiv again (its own naming rule)."""
    cache = tmp_path / "shiv"
    env = _clean_env(SHIV_ROOT=str(cache), PYTHONPROFILEIMPORTTIME="1")
    first = subprocess.run([str(pyz), "version"], capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr
    assert " _bootstrap" in first.stderr  # shiv's bootstrap unpacked it
    assert f"first run of this build: unpacking its dependencies (~400 MB, ~10 s, once) into {cache}" \
        in first.stderr  # said before the pause, so it does not look hung
    unpacked = [p.name for p in cache.iterdir() if p.is_dir()]
    second = subprocess.run([str(pyz), "version"], capture_output=True, text=True, timeout=600, env=env)
    assert second.returncode == 0 and second.stdout == first.stdout, second.stderr
    assert " _bootstrap" not in second.stderr and "first run" not in second.stderr  # found the folder itself
    assert [p.name for p in cache.iterdir() if p.is_dir()] == unpacked
    forced = subprocess.run([str(pyz), "version"], capture_output=True, text=True, timeout=600,
                            env={**env, "SHIV_FORCE_EXTRACT": "1"})
    assert forced.returncode == 0 and " _bootstrap" in forced.stderr


def test_serves_queries_with_only_what_it_ships(pyz, tmp_path):
    """`serve` from the pyz answers a real client: every module the server imports is inside (numpy was once
    missing, hidden by the machine's own numpy until the pyz stopped looking outside itself)."""
    import psycopg

    from tests.support.server import start_server

    (tmp_path / "data").mkdir()  # serve refuses a data dir that does not exist (a typo)
    server = start_server(tmp_path / "data", command=[str(pyz)], env={"SHIV_ROOT": str(tmp_path / "shiv")},
                          timeout=300)
    try:
        with psycopg.connect(server.dsn()) as conn:
            row = conn.execute("SELECT 1::int, 'x'::text, 1.5::numeric, date '2026-01-02', "
                               "ARRAY[1, 2]").fetchone()
            assert row == (1, "x", Decimal("1.5"), dt.date(2026, 1, 2), [1, 2])
            assert conn.execute("SELECT sum(g) FROM generate_series(1, 100000) g").fetchone() == (5000050000,)
            with conn.cursor(binary=True) as cursor:
                assert cursor.execute("SELECT 42::bigint, 'y'").fetchone() == (42, "y")
    finally:
        assert server.stop() == 0, server.log()[-3000:]


def test_runs_only_what_it_ships_not_the_machines_packages(pyz, tmp_path):
    """A package in the user's (or the system's) site-packages is never imported: pyarrow would pick up a
    pandas or numpy it was not built against (and pay its import time on every run)."""
    user_site = subprocess.run(["python3", "-c", "import site; print(site.getusersitepackages())"],
                               capture_output=True, text=True, check=True,
                               env=_clean_env(PYTHONUSERBASE=str(tmp_path / "userbase"))).stdout.strip()
    fake = Path(user_site) / "pandas"
    fake.mkdir(parents=True)
    marker = tmp_path / "imported"
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError('fake')\n")
    # `tables` opens the catalog, which imports pyarrow.dataset: that looks for pandas when it can see one
    from bemidb import config
    from bemidb.storage.catalog import open_catalog

    open_catalog(config.resolve(None, config.STORAGE, env={"BEMIDB_DATA_DIR": str(tmp_path / "data")})).close()
    result = subprocess.run([str(pyz), "tables", "--data-dir", str(tmp_path / "data")], capture_output=True,
                            text=True, timeout=600, cwd=tmp_path,
                            env=_clean_env(PYTHONUSERBASE=str(tmp_path / "userbase")))
    assert result.returncode == 0, result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("version", sorted(OTHER_PYTHONS))
def test_wrong_python_is_refused_before_unpacking(pyz, version, tmp_path):
    python = OTHER_PYTHONS[version]
    if not Path(python).exists():
        pytest.skip(f"no Python {version} on this machine")
    cache = tmp_path / "shiv"
    result = subprocess.run([python, str(pyz), "serve"], capture_output=True, text=True, timeout=120,
                            env=_clean_env(SHIV_ROOT=str(cache)))
    assert result.returncode == 2
    assert f"this is Python {version}." in result.stderr and "3.11" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not cache.exists()  # refused before shiv unpacked anything


def test_other_cpu_is_refused_with_the_fix():
    here = launch._machine(platform.machine())
    other = "aarch64" if here == "x86_64" else "x86_64"
    message = launch.refusal({"python": "3.11", "machine": other, "system": platform.system()})
    assert message and f"built for {platform.system()} {other}" in message
    assert f"./build_zipapp.sh --platform {here}" in message
    assert launch.refusal({"python": "3.11", "machine": here, "system": platform.system()}) is None


def test_cache_falls_back_to_a_private_temp_folder_when_home_is_unusable(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("HOME", str(not_a_folder))  # ~/.shiv cannot be made there, not even by root
    root = launch.cache_root({})
    assert root == str(tmp_path / f"bemidb-shiv-{os.getuid()}")
    assert (os.stat(root).st_mode & 0o777) == 0o700
    assert launch.cache_root({"SHIV_ROOT": "/somewhere"}) is None  # an explicit choice always wins
    monkeypatch.setenv("HOME", str(tmp_path))
    assert launch.cache_root({}) is None  # a writable home: shiv's default ~/.shiv


def _uid_without_account() -> int:
    uid = 12345
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the pyz as another, unprivileged user")
@pytest.mark.parametrize("who", ["nobody", "uid-without-account"])
def test_runs_unprivileged_with_home_unset_from_a_read_only_folder(pyz, who):
    """nobody: a real account whose home (/nonexistent) cannot be written; a bare uid with no passwd entry at
    all, as containers run with --user 12345 (no home can even be looked up)."""
    if who == "nobody":
        try:
            uid = pwd.getpwnam("nobody").pw_uid
        except KeyError:
            pytest.skip("no user nobody")
    else:
        uid = _uid_without_account()
    if not Path(SYSTEM_PYTHON).exists() or not shutil.which("setpriv"):
        pytest.skip(f"{SYSTEM_PYTHON} or setpriv missing")
    base = Path(tempfile.mkdtemp(prefix="bemidb-ops-unprivileged-"))  # pytest's tmp_path is root-only (0700)
    try:
        base.chmod(0o755)
        folder = base / "read-only"
        folder.mkdir()
        shutil.copy(pyz, folder / "bemidb.pyz")
        (folder / "bemidb.pyz").chmod(0o755)
        folder.chmod(0o555)  # owned by root: the user cannot write here, nor has a home it could write
        temp = base / "tmp"
        temp.mkdir()
        temp.chmod(0o1777)
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "env", "-i",
                   "PATH=/usr/bin:/bin", f"TMPDIR={temp}", SYSTEM_PYTHON, str(folder / "bemidb.pyz")]
        results = [subprocess.run(command + args, capture_output=True, text=True, timeout=600, cwd=folder)
                   for args in (["version"], ["--help"])]  # the first run unpacks, the second is warm
        for result in results:
            assert result.returncode == 0, result.stderr
        assert "bemidb 0.1.0" in results[0].stdout and "sync" in results[1].stdout
        cache = temp / f"bemidb-shiv-{uid}"
        assert cache.is_dir() and cache.stat().st_uid == uid and (cache.stat().st_mode & 0o777) == 0o700
        assert sorted(p.name for p in folder.iterdir()) == ["bemidb.pyz"]  # nothing written beside the pyz
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_two_builds_of_one_checkout_give_the_same_bytes(tmp_path):
    snapshot = tmp_path / "checkout"
    snapshot.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive, check=True)
    outputs = []
    for name in ("one.pyz", "two.pyz"):
        result = subprocess.run([str(snapshot / "build_zipapp.sh"), "-o", str(tmp_path / name)],
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
