#!/usr/bin/env bash
# Set up a virtual environment with voxscope and its test tools, lint, and run the whole test suite.
# Usage: ./scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian tools the tests use: speexenc (Ogg/Speex test audio; FFmpeg has no Speex encoder),
# redis-server, postgresql and nginx (the many-machines queue, database and load-balancer tests:
# nginx runs deploy/nginx.conf as the test user, never as a system service), chromium (the web
# console's browser tests, driven by Playwright: its own browser download is not used).
missing=""
command -v speexenc >/dev/null 2>&1 || missing="$missing speex"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq || true
  # One package at a time: a package whose setup fails (say nginx finding port 80 taken) must not
  # leave the others reported as missing.
  for pkg in $missing; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null \
      || echo "warning: could not install $pkg; tests that need it will be skipped" >&2
  done
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test]"

ruff check voxscope tests benchmarks
python -m pytest -q -p no:cacheprovider --durations=15 "$@"
