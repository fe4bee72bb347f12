#!/usr/bin/env bash
# Prepares the Python environment the official-client test needs: a virtualenv at
# <repo>/.venv with tecton-client==0.4.0 from PyPI. Idempotent: a second run only checks.
#
#   scripts/setup-python.sh        # prints the interpreter path on success
#
# Used by the project's test script before `cargo test` (CI runs it on a fresh machine);
# tests/python_client.rs fails under CI=true when .venv/bin/python is missing.
set -euo pipefail

# The client version the spec was written against (spec/tecton-api.md section 4).
CLIENT_PIN="tecton-client==0.4.0"
CLIENT_VERSION="${CLIENT_PIN##*==}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-python: '$python' not found; install Python 3 (3.8 or newer)" >&2
    exit 1
fi

# A venv whose interpreter no longer runs (e.g. the base Python moved) is rebuilt.
if [[ -x "$venv/bin/python" ]] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "setup-python: $venv is broken; recreating it" >&2
    rm -rf "$venv"
fi

if [[ ! -x "$venv/bin/python" ]]; then
    # Debian's python3 ships venv without ensurepip unless python3-venv is installed; a
    # half-made venv (no pip) would fail later, so remove it before retrying.
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            echo "setup-python: '$python -m venv' failed; installing python3-venv with apt-get" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >/dev/null
            apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv "$venv"
        else
            echo "setup-python: '$python -m venv' failed (is ensurepip missing?)." >&2
            echo "setup-python: install the venv module (Debian/Ubuntu: sudo apt-get install python3-venv) and rerun." >&2
            exit 1
        fi
    fi
fi

vpy="$venv/bin/python"
installed="$("$vpy" -c 'import importlib.metadata as m
try:
    print(m.version("tecton-client"))
except m.PackageNotFoundError:
    pass' 2>/dev/null || true)"

if [[ "$installed" != "$CLIENT_VERSION" ]]; then
    "$vpy" -m pip install --quiet --disable-pip-version-check --no-input "$CLIENT_PIN"
fi

# Fail here, not in the Rust test, if the install is unusable.
"$vpy" -c 'from tecton_client import TectonClient' >/dev/null

# --- Load report schema: a reference JSON Schema validator, used by
# reports/tests/load_schema.rs to check report.json against the published schema.
SCHEMA_PIN="jsonschema==4.26.0"
if ! "$vpy" -c 'import importlib.metadata as m, sys; sys.exit(m.version("jsonschema") != "'"${SCHEMA_PIN##*==}"'")' >/dev/null 2>&1; then
    "$vpy" -m pip install --quiet --disable-pip-version-check --no-input "$SCHEMA_PIN"
fi
"$vpy" -c 'import jsonschema' >/dev/null

echo "$vpy"
