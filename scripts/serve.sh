#!/usr/bin/env bash
# The token server, from a fresh clone: makes .venv on first use, installs
# jwtward with the server's dependencies, then runs `jwtward serve` on
# 127.0.0.1:8000 with SQLite in ./jwtward-data. Arguments go to `jwtward serve`
# (e.g. scripts/serve.sh --port 9000); JWTWARD_* variables configure the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_venv.sh
. scripts/_venv.sh server

exec .venv/bin/jwtward serve "$@"
