#!/bin/sh
# Installs the Debian packages the tests and edge mode need, when they are missing.
# As root: apt-get. Otherwise: say what to install and go on (tests that need them are skipped).
set -e
need=""
# python3 -m venv needs ensurepip (Debian: python3-venv) unless Python was built with it
${PYTHON:-python3} -c "import ensurepip" 2>/dev/null || need="$need python3-venv"
command -v nginx >/dev/null 2>&1 || need="$need nginx"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v chromedriver >/dev/null 2>&1 || need="$need chromium-driver"
# npm fetches axe-core for the accessibility tests (scripts/fetch_axe.py)
command -v npm >/dev/null 2>&1 || need="$need npm"
# PostgreSQL for tests/test_postgres.py (GATE_DATABASE_URL); Debian keeps initdb off the PATH
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages:$need"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
else
    echo "please install the Debian packages:$need (sudo apt-get install$need)" >&2
fi
