#!/usr/bin/env bash
# Set up (scripts/setup.sh), check the protos and generated code, then run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k sampler
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

if [ -x node_modules/.bin/buf ]; then
  echo "== buf lint / format"
  node_modules/.bin/buf lint
  node_modules/.bin/buf format --diff --exit-code
  # The released contract is what main holds: a branch is checked against main; main itself
  # against its previous commit, so no single commit on main breaks it. (FILE rules, buf.yaml.)
  if [ "$(git rev-parse --abbrev-ref HEAD)" != main ] && git rev-parse -q --verify main >/dev/null; then
    against=$(git rev-parse main)
  else
    against=$(git rev-parse -q --verify HEAD~1 || true)
  fi
  if [ -n "$against" ]; then
    echo "== buf breaking against ${against:0:7}"
    node_modules/.bin/buf breaking --against ".git#ref=$against,depth=100000"
  else
    echo "== buf breaking skipped: no earlier contract in this clone"
  fi
fi

echo "== ruff"
.venv/bin/ruff check --quiet .

echo "== generated code is fresh"
.venv/bin/python scripts/gen_protos.py >/dev/null
if ! git diff --exit-code --stat -- gen/python clients/python/lynx_telemetry_client; then
  echo "gen/python is stale: run .venv/bin/python scripts/gen_protos.py and commit the result" >&2
  exit 1
fi
if [ -n "$(git status --porcelain --untracked-files=all -- gen/python)" ]; then
  echo "gen/python has untracked generated files: commit them" >&2
  exit 1
fi

echo "== pytest"
exec .venv/bin/python -m pytest "$@"
