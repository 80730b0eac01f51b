#!/usr/bin/env bash
# The whole test suite, from a fresh clone: makes .venv on first use, installs
# jwtward with its test dependencies, then runs ruff, mypy --strict and pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k jws -x).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# Reinstall only when the dependency list changed.
stamp=".venv/.jwtward-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[test]'
    rm -f .venv/.jwtward-installed-*
    touch "$stamp"
fi

.venv/bin/ruff check src tests bench
.venv/bin/mypy --strict src
.venv/bin/python -m pytest "$@"
