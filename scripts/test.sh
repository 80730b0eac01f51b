#!/usr/bin/env bash
# The whole test suite, from a fresh clone: makes .venv on first use, installs
# jwtward with its test dependencies, then runs ruff, mypy --strict and pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k jws -x).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_venv.sh
. scripts/_venv.sh test

.venv/bin/ruff check src tests bench examples
.venv/bin/mypy --strict src
.venv/bin/python -m pytest "$@"
