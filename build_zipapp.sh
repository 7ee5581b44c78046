#!/usr/bin/env bash
# Build bemidb.pyz: one file holding bemidb and its pinned dependencies, run by any python3.11+.
# Uses a throwaway venv for shiv, so the user's Python environment is never touched.
#   ./build_zipapp.sh                   # for this machine
#   ./build_zipapp.sh --platform aarch64  # linux wheels for another CPU (x86_64 | aarch64)
set -euo pipefail
cd "$(dirname "$0")"

PLATFORM=""
OUTPUT="bemidb.pyz"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --platform) PLATFORM="$2"; shift 2 ;;
    -o|--output) OUTPUT="$2"; shift 2 ;;
    *) echo "usage: $0 [--platform x86_64|aarch64] [-o OUTPUT]" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "bemidb needs python3.11+ to build")'

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check shiv==1.0.8

SITE="$WORK/site"
if [[ -n "$PLATFORM" ]]; then
  # Cross-build: binary wheels for the target platform, pure-Python ones as they are.
  "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --target "$SITE" \
    --platform "manylinux_2_28_${PLATFORM}" --platform "manylinux_2_17_${PLATFORM}" \
    --platform "manylinux2014_${PLATFORM}" --only-binary=:all: --python-version 3.11 --implementation cp \
    "$(pwd)"
else
  "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --target "$SITE" "$(pwd)"
fi

# --reproducible: fixed timestamps in the archive, so the same inputs give the same bytes.
SOURCE_DATE_EPOCH=315532800 "$WORK/venv/bin/shiv" --site-packages "$SITE" --reproducible --compressed \
  -p '/usr/bin/env python3' -e bemidb.cli.launch:main -o "$OUTPUT" >/dev/null
chmod +x "$OUTPUT"
echo "built $OUTPUT ($(du -h "$OUTPUT" | cut -f1), $(stat -c %s "$OUTPUT") bytes)"
