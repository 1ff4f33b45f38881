#!/usr/bin/env bash
# Set up everything Lynx needs on a fresh machine: the .venv virtual environment
# (Lynx, Basilisk, test tools, the telemetry client) and the buf CLI. Idempotent:
# a second run only re-installs when a pyproject or package file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: Lynx needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.lynx-setup-stamp
# Every package of the repository, each from its own folder (folder = import path), editable.
PACKAGES=(gen/python "services/common[sqlite,objectstore,tls]" services/sampler services/scheduler services/telemetry
          services/runner services/results gateway "cli[basilisk,rocketpy]" clients/python)
want=$(cat pyproject.toml gen/python/pyproject.toml services/*/pyproject.toml gateway/pyproject.toml \
       cli/pyproject.toml clients/python/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (Lynx, Basilisk, test tools)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  editable=()
  for package in "${PACKAGES[@]}"; do editable+=(-e "$package"); done
  # pip >= 25.1 for --group (PEP 735 dependency groups: the test tools in ./pyproject.toml)
  .venv/bin/python -m pip install --quiet "${editable[@]}" --group test
  echo "$want" > "$stamp"
fi

if command -v npm >/dev/null 2>&1; then
  lock_stamp=node_modules/.lynx-setup-stamp
  want_npm=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$lock_stamp" 2>/dev/null)" != "$want_npm" ]; then
    echo "setup: installing the buf CLI (npm @bufbuild/buf)"
    npm ci --no-audit --no-fund --silent
    echo "$want_npm" > "$lock_stamp"
  fi
else
  echo "setup: npm not found; buf lint/format checks will be skipped" >&2
fi

# Debian's Chromium for the dashboard's browser tests (tests/dashboard/test_browser.py); Playwright drives it.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Debian's chromium for the browser tests"
  if ! { apt-get install -y -qq chromium >/dev/null 2>&1 \
         || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; }; then
    echo "setup: could not install chromium; the browser tests will be skipped" >&2
  fi
fi
