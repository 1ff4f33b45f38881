#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the tutorial study end to end on a private local stack:
# sampler, scheduler, telemetry-ingest, gateway and one runner as separate processes,
# 5 runs of the Basic Orbit scenario (Latin Hypercube, seed 42), progress, a results table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/lynx run scenarios/aerospace/configs/basic_orbit_tutorial.yaml --runs 5 --runners 1 "$@"
