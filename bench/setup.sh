#!/usr/bin/env bash
# Install what `python -m bench` needs on top of arko: the bench-only Python
# packages into the virtualenv given as $1 (default .venv), and Debian's
# redis-server (the broker of the Celery peer) when it is missing.
set -euo pipefail

venv="${1:-.venv}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ ! -x "$venv/bin/python" ]; then
    echo "bench/setup.sh: no virtualenv at $venv (run 'make venv' first)" >&2
    exit 1
fi
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"

if ! command -v redis-server >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
    # Debian starts a system-wide redis on :6379; the bench runs its own on a
    # free loopback port, so the system one is not needed.
fi
echo "bench/setup.sh: bench dependencies ready in $venv"
