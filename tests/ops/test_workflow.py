"""The GitHub Actions example cannot rot: its sync steps run here, with the same env names, against real services.

Each job's sync step is read from examples/github-actions/bemidb-sync.yml (a tiny YAML reader below: PyYAML is
not a dependency), its `${{ secrets.X }}` filled from the local Postgres and SeaweedFS, and its `run:` line
executed by bash in a folder holding a `bemidb.pyz` (a zipapp of this checkout's bemidb package on the test
venv's Python, so the step runs the real CLI with exactly the workflow's arguments).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipapp
from pathlib import Path

import pytest

from bemidb import config
from tests.support.commands import REPO
from tests.support.ports import free_port

WORKFLOW = REPO / "examples" / "github-actions" / "bemidb-sync.yml"


# ---------------------------------------------------------------------------------------------------------
# A YAML reader for the block-style subset workflows use: mappings, sequences, quoted and plain scalars,
# flow lists, `|` block scalars and comments. Enough for this file; it raises on anything it does not know.

def _strip_comment(text: str) -> str:
    quote = None
    for i, ch in enumerate(text):
        if ch in "\"'" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text: str):
    text = _strip_comment(text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(item) for item in text[1:-1].split(",") if item.strip()]
    return {"true": True, "false": False}.get(text, text)


_KEY = re.compile(r"""^("[^"]*"|'[^']*'|[^\s#'"][^:#]*?):(?:\s+|$)(.*)$""")


class _MiniYaml:
    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.i = 0

    def _indent(self) -> int:
        while self.i < len(self.lines) and (not self.lines[self.i].strip()
                                            or self.lines[self.i].lstrip().startswith("#")):
            self.i += 1
        if self.i >= len(self.lines):
            return -1
        return len(self.lines[self.i]) - len(self.lines[self.i].lstrip(" "))

    def _is_item(self) -> bool:
        stripped = self.lines[self.i].strip()
        return stripped == "-" or stripped.startswith("- ")

    def node(self, indent: int):
        return self.sequence(indent) if self._is_item() else self.mapping(indent)

    def mapping(self, indent: int) -> dict:
        out = {}
        while self._indent() == indent and not self._is_item():
            match = _KEY.match(self.lines[self.i].strip())
            if not match:
                raise ValueError(f"line {self.i + 1}: not a mapping entry: {self.lines[self.i]!r}")
            self.i += 1
            out[_scalar(match.group(1))] = self.value(match.group(2), indent)
        return out

    def value(self, rest: str, indent: int):
        rest = _strip_comment(rest).strip()
        if rest in ("|", "|-", ">", ">-"):
            return self.block(indent)
        if rest:
            return _scalar(rest)
        following = self._indent()
        if following > indent or (following == indent and following >= 0 and self._is_item()):
            return self.node(following)
        return None

    def sequence(self, indent: int) -> list:
        out = []
        while self._indent() == indent and self._is_item():
            line = self.lines[self.i]
            content = line.strip()[1:].lstrip()
            if not content:
                self.i += 1
                out.append(self.node(self._indent()))
            elif _KEY.match(content):  # "- key: value": a mapping whose first key sits after the dash
                item_indent = len(line) - len(content)
                self.lines[self.i] = " " * item_indent + content
                out.append(self.mapping(item_indent))
            else:
                self.i += 1
                out.append(_scalar(content))
        return out

    def block(self, indent: int) -> str:
        raw = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip() and len(line) - len(line.lstrip(" ")) <= indent:
                break
            raw.append(line)
            self.i += 1
        body = [line for line in raw if line.strip()]
        cut = min(len(line) - len(line.lstrip(" ")) for line in body)
        return "\n".join(line[cut:] for line in raw).rstrip("\n") + "\n"


def load_yaml(text: str) -> dict:
    reader = _MiniYaml(text)
    document = reader.node(reader._indent())
    if reader._indent() != -1:
        raise ValueError(f"line {reader.i + 1}: unexpected indentation")
    return document


def test_mini_yaml_reads_the_shapes_it_claims():
    doc = load_yaml("a: 1  # note\nb:\n  - x\n  - k: 'v # not a comment'\n    n: [p, q]\nc: |\n  one\n"
                    "    two\nd:\n- e\ne: \"quoted: colon\"\nf: false\n")
    assert doc == {"a": "1", "b": ["x", {"k": "v # not a comment", "n": ["p", "q"]}], "c": "one\n  two\n",
                   "d": ["e"], "e": "quoted: colon", "f": False}
    with pytest.raises(ValueError):
        load_yaml("a: 1\n   b: 2\n")


# ---------------------------------------------------------------------------------------------------------

SECRET_REF = re.compile(r"\$\{\{\s*secrets\.([A-Z0-9_]+)\s*\}\}")
ENV_NAMES = {setting.env for setting in config.SETTINGS.values()}


def _workflow() -> dict:
    return load_yaml(WORKFLOW.read_text())


def _sync_step(job: dict) -> dict:
    steps = [step for step in job["steps"] if "sync postgres" in str(step.get("run", ""))]
    assert len(steps) == 1, job["steps"]
    return steps[0]


def test_workflow_schedules_two_independent_table_sets_that_never_overlap_themselves():
    workflow = _workflow()
    crons = [entry["cron"] for entry in workflow["on"]["schedule"]]
    assert len(crons) == 2 and "workflow_dispatch" in workflow["on"]
    jobs = workflow["jobs"]
    assert set(jobs) == {"hourly", "daily"}
    groups = set()
    for name, job in jobs.items():
        assert job["concurrency"]["cancel-in-progress"] is False  # a late run waits, never killed mid-commit
        groups.add(job["concurrency"]["group"])
        assert any(cron in job["if"] for cron in crons) and f"'{name}'" in job["if"]
        python = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python")]
        assert python and python[0]["with"]["python-version"] == "3.11"
    assert len(groups) == 2
    hourly = _sync_step(jobs["hourly"])["env"]["SOURCE_POSTGRES_INCLUDE_TABLES"]
    daily = _sync_step(jobs["daily"])["env"]["SOURCE_POSTGRES_EXCLUDE_TABLES"]
    assert hourly == daily  # the daily set is everything but the hourly set
    assert _doctor_step(jobs["hourly"])["env"]["SOURCE_POSTGRES_INCLUDE_TABLES"] == hourly  # checks that set


def test_every_secret_and_env_name_is_one_bemidb_reads():
    workflow = _workflow()
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for name, value in (step.get("env") or {}).items():
                if name == "GH_TOKEN":
                    continue
                assert name in ENV_NAMES, f"{name} is not a bemidb setting"
                secret = SECRET_REF.fullmatch(str(value))
                assert secret is None or secret.group(1) == name  # secret named like the variable
        sync_env = _sync_step(job)["env"]
        for needed in ("SOURCE_POSTGRES_DATABASE_URL", "CATALOG_DATABASE_URL", "AWS_S3_BUCKET",
                       "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_S3_ENDPOINT", "AWS_REGION"):
            assert SECRET_REF.fullmatch(sync_env[needed]), needed
    for name in workflow["env"]:
        assert name in ENV_NAMES or name == "BEMIDB_VERSION"


def _mini_pyz(folder: Path) -> Path:
    """bemidb.pyz for this checkout on the test venv's Python: the real CLI, dependencies from the venv."""
    source = folder / "pyz-src"
    shutil.copytree(REPO / "bemidb", source / "bemidb", ignore=shutil.ignore_patterns("__pycache__"))
    target = folder / "bemidb.pyz"
    zipapp.create_archive(source, target, interpreter=sys.executable, main="bemidb.cli.main:main")
    return target


def _doctor_step(job: dict) -> dict:
    steps = [step for step in job["steps"] if "bemidb.pyz doctor" in str(step.get("run", ""))]
    assert len(steps) == 1, job["steps"]
    return steps[0]


def _run_step(step: dict, workflow_env: dict, secrets: dict, cwd: Path,
              **extra: str) -> subprocess.CompletedProcess:
    def fill(value: str) -> str:
        return SECRET_REF.sub(lambda m: secrets[m.group(1)], str(value))

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
    env.update({k: fill(v) for k, v in workflow_env.items()})
    env.update({k: fill(v) for k, v in step["env"].items()})
    env["COLUMNS"] = "200"
    env.update(extra)
    assert "${{" not in step["run"]
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _rows_by_table(storage_env: dict) -> dict[str, int]:
    from bemidb.storage.catalog import open_catalog

    catalog = open_catalog(config.resolve(None, config.STORAGE, env=storage_env))
    try:
        return {identifier[-1]: catalog.load_table(identifier).scan().to_arrow().num_rows
                for identifier in catalog.list_tables("public")}
    finally:
        catalog.close()


def test_workflow_sync_steps_run_against_local_postgres_and_s3(pg, s3, bucket, tmp_path):
    workflow = _workflow()
    hourly_step, daily_step = _sync_step(workflow["jobs"]["hourly"]), _sync_step(workflow["jobs"]["daily"])
    hourly_tables = [t.split(".")[1] for t in hourly_step["env"]["SOURCE_POSTGRES_INCLUDE_TABLES"].split(",")]
    daily_tables = ["users", "products"]

    source_url = pg.create_database("ops_gha_source")
    for position, table in enumerate(hourly_tables + daily_tables):
        rows = 10 * (position + 1)
        pg.execute("ops_gha_source", f"CREATE TABLE public.{table} (id bigint PRIMARY KEY, amount numeric(10,2), "
                                     "note text, created_at timestamptz)")
        pg.execute("ops_gha_source", f"INSERT INTO public.{table} SELECT i, i * 1.25, 'row ' || i, "
                                     f"now() - i * interval '1 hour' FROM generate_series(1, {rows}) i")
    secrets = {"SOURCE_POSTGRES_DATABASE_URL": source_url,
               "CATALOG_DATABASE_URL": pg.create_database("ops_gha_catalog"), **s3.env(bucket)}
    _mini_pyz(tmp_path)

    # the doctor step first, as the job runs it (a free port: 54321 may be taken on a shared test machine)
    doctor = _run_step(_doctor_step(workflow["jobs"]["hourly"]), workflow["env"], secrets, tmp_path,
                       BEMIDB_PORT=str(free_port()))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"{len(hourly_tables)} of {len(hourly_tables) + len(daily_tables)} tables to sync" in doctor.stdout

    result = _run_step(hourly_step, workflow["env"], secrets, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = {table: 10 * (i + 1) for i, table in enumerate(hourly_tables + daily_tables)}
    assert _rows_by_table(secrets) == {t: expected[t] for t in hourly_tables}

    result = _run_step(daily_step, workflow["env"], secrets, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # the daily run synced its own set and, with --delete-old-tables, kept the hourly set it excludes
    assert _rows_by_table(secrets) == expected
    for secret in (pg.password, s3.env(bucket)["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in result.stdout + result.stderr


def test_release_builds_both_cpus_and_publishes_the_names_the_example_downloads():
    release = load_yaml((REPO / ".github" / "workflows" / "release.yml").read_text())
    build = release["jobs"]["build"]
    assert build["strategy"]["matrix"]["platform"] == ["x86_64", "aarch64"]
    runs = "\n".join(str(step.get("run", "")) for step in build["steps"])
    assert "./build_zipapp.sh --platform ${{ matrix.platform }} -o bemidb-linux-${{ matrix.platform }}.pyz" in runs
    assert "cmp " in runs  # the reproducibility check
    publish = "\n".join(str(step.get("run", "")) for step in release["jobs"]["publish"]["steps"])
    assert "bemidb-linux-x86_64.pyz bemidb-linux-aarch64.pyz SHA256SUMS" in publish
    example = WORKFLOW.read_text()
    assert '--pattern "bemidb-linux-$(uname -m).pyz" --pattern SHA256SUMS' in example
    assert "tomllib" in runs and "pyproject.toml" in runs  # tag must equal the package version
