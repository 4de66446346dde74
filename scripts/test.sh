#!/usr/bin/env bash
# Set up a virtual environment with voxscope and its test tools, lint, and run the whole test suite.
# Usage: ./scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian tools the tests use to make test audio: speexenc (Ogg/Speex; FFmpeg has no Speex encoder).
if ! command -v speexenc >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq speex >/dev/null) \
    || echo "warning: could not install speex; Ogg/Speex tests will be skipped" >&2
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test]"

ruff check voxscope tests benchmarks
python -m pytest -q -p no:cacheprovider --durations=15 "$@"
