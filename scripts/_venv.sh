# Sourced by scripts/serve.sh and scripts/test.sh: make .venv on first use and
# install jwtward with the extra named in $1, again only when pyproject.toml
# changed since the last install of that extra.
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
extra="$1"
stamp=".venv/.jwtward-installed-$extra-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[$extra]"
    rm -f .venv/.jwtward-installed-"$extra"-*
    touch "$stamp"
fi
