#!/usr/bin/env bash
# Build bemidb.pyz: one file holding bemidb and its pinned dependencies, run by python3 on the target machine.
# Uses a throwaway venv for the build tools, so the user's Python environment is never touched.
#   ./build_zipapp.sh                        # for this machine and this python3
#   ./build_zipapp.sh --platform aarch64     # Linux wheels for another CPU (x86_64 | aarch64)
#   ./build_zipapp.sh --update-constraints   # re-resolve and rewrite zipapp-constraints.txt
#   PYTHON=python3.12 ./build_zipapp.sh      # for another Python version (the pyz runs only on that one)
#
# Reproducible: the same checkout, constraints, Python minor version and platform give the same bytes.
# Every transitive dependency is pinned by zipapp-constraints.txt, the build tools are pinned, timestamps are
# fixed (SOURCE_DATE_EPOCH), file modes are normalised and the install-path-dependent files pip writes
# (console scripts with the build venv's path in their shebang, direct_url.json) are left out.
set -euo pipefail
cd "$(dirname "$0")"

PLATFORM=""
OUTPUT="bemidb.pyz"
UPDATE_CONSTRAINTS=""
CONSTRAINTS="zipapp-constraints.txt"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --platform) PLATFORM="${2:-}"; shift 2 || { echo "--platform needs x86_64 or aarch64" >&2; exit 2; } ;;
    -o|--output) OUTPUT="${2:-}"; shift 2 || { echo "--output needs a file name" >&2; exit 2; } ;;
    --update-constraints) UPDATE_CONSTRAINTS=1; shift ;;
    *) echo "usage: $0 [--platform x86_64|aarch64] [-o OUTPUT] [--update-constraints]" >&2; exit 2 ;;
  esac
done
case "$PLATFORM" in ""|x86_64|aarch64) ;; *) echo "--platform: '$PLATFORM' is not x86_64 or aarch64" >&2; exit 2 ;; esac

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "bemidb needs python3.11+ to build")'
PY_VERSION="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
MACHINE="${PLATFORM:-$(uname -m)}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m venv "$WORK/venv"
PIP=("$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --no-compile)
# Pinned build tools: the wheel of bemidb itself is built without isolation by this exact setuptools.
"${PIP[@]}" shiv==1.0.8 setuptools==80.9.0 2> "$WORK/pip.err" || { cat "$WORK/pip.err" >&2; exit 1; }

PIN=()
if [[ -z "$UPDATE_CONSTRAINTS" && -f "$CONSTRAINTS" ]]; then
  PIN=(-c "$CONSTRAINTS")
fi
# bemidb's own wheel first (pure Python, so it installs on any platform), then it and its dependencies.
# Built from a clean copy of the sources: setuptools' in-tree build/ folder can hold stale modules.
mkdir "$WORK/src"
tar -c --exclude=__pycache__ --exclude='*.pyc' pyproject.toml README.md bemidb | tar -x -C "$WORK/src"
"$WORK/venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
  -w "$WORK/dist" "$WORK/src" > /dev/null 2> "$WORK/pip.err" || { cat "$WORK/pip.err" >&2; exit 1; }
WHEEL=("$WORK"/dist/bemidb-*.whl)
SITE="$WORK/site"
TARGET=()
if [[ -n "$PLATFORM" ]]; then
  # Cross-build: binary wheels for the target platform, pure-Python ones as they are.
  TARGET=(--platform "manylinux_2_28_${PLATFORM}" --platform "manylinux_2_17_${PLATFORM}"
          --platform "manylinux2014_${PLATFORM}" --only-binary=:all: --python-version "$PY_VERSION"
          --implementation cp)
fi
"${PIP[@]}" --target "$SITE" "${PIN[@]}" "${TARGET[@]}" "${WHEEL[0]}" 2> "$WORK/pip.err" \
  || { cat "$WORK/pip.err" >&2; exit 1; }

# Normalise the staged site-packages, write the archive with shiv's builder, then add our launcher.
# Written beside OUTPUT and renamed at the end, so a running bemidb.pyz is never seen half-written.
PARTIAL="$OUTPUT.partial.$$"
trap 'rm -rf "$WORK" "$PARTIAL"' EXIT
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}" "$WORK/venv/bin/python" - "$SITE" "$PARTIAL" "$PY_VERSION" \
  "$MACHINE" "${UPDATE_CONSTRAINTS:+$CONSTRAINTS}" <<'PY'
import datetime as dt, json, os, shutil, sys, time, zipfile
from importlib import metadata
from pathlib import Path

import shiv
from shiv import builder
from shiv.bootstrap.environment import Environment
from shiv.constants import BUILD_AT_TIMESTAMP_FORMAT

site, output, py_version, machine, constraints = Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:]

# Path-dependent files pip writes: console scripts (shebang = the throwaway venv) and direct_url.json.
shutil.rmtree(site / "bin", ignore_errors=True)
for dist_info in site.glob("*.dist-info"):
    (dist_info / "direct_url.json").unlink(missing_ok=True)
    record = dist_info / "RECORD"
    if record.exists():
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(l for l in lines if not l.startswith(("../../bin/", "bin/"))
                                  and "direct_url.json" not in l))
for path in site.rglob("*"):  # modes do not depend on the builder's umask
    if path.is_file() and not path.is_symlink():
        path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)

if constraints:  # every installed distribution, pinned: the next builds resolve exactly these
    pins = sorted((d.name.lower(), d.version) for d in metadata.distributions(path=[str(site)])
                  if d.name.lower() != "bemidb")
    Path(constraints).write_text("# Every dependency of bemidb.pyz, pinned for reproducible builds.\n"
                                 "# Regenerate with ./build_zipapp.sh --update-constraints\n"
                                 + "".join(f"{name}=={version}\n" for name, version in pins))

epoch = int(os.environ["SOURCE_DATE_EPOCH"])
env = Environment(built_at=dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime(BUILD_AT_TIMESTAMP_FORMAT),
                  shiv_version=shiv.__version__, entry_point="bemidb.cli.launch:main", reproducible=True)
# __main__.py imports bemidb_pyz (a copy of bemidb/cli/launch.py at the archive root), which checks the
# Python version, platform and cache folder BEFORE shiv's bootstrap unpacks anything.
builder.create_archive([site], output, "/usr/bin/env python3", "bemidb_pyz:start", env, compressed=True)
date_time = time.gmtime(epoch)[:6]
# build_id (set by create_archive, a hash of the contents) lets the launcher find shiv's unpacked copy itself.
facts = {"python": py_version, "machine": machine, "system": "Linux" if sys.platform == "linux" else sys.platform,
         "build_id": env.build_id}
with zipfile.ZipFile(output, "a") as archive:
    for name, data in (("bemidb_pyz.py", (site / "bemidb" / "cli" / "launch.py").read_bytes()),
                       ("bemidb_build.json", json.dumps(facts, sort_keys=True).encode())):
        info = zipfile.ZipInfo(name, date_time=date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        archive.writestr(info, data)
output.chmod(0o755)
PY
mv -f "$PARTIAL" "$OUTPUT"
echo "built $OUTPUT for Python $PY_VERSION on Linux $MACHINE ($(du -h "$OUTPUT" | cut -f1), $(stat -c %s "$OUTPUT") bytes, sha256 $(sha256sum "$OUTPUT" | cut -c1-16))"
