#!/usr/bin/env bash
# A non-Python scenario under the TETRYX contract: reads its run config path and output dir from
# arguments (and the environment), prints telemetry as TETRYX lines on stdout, writes artifacts.
#   orbit.sh --config FILE --out DIR [--steps N] [--then-sleep]
set -euo pipefail
steps=3
sleep_after=0
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --then-sleep) sleep_after=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
test -r "$config"
if [ -n "${GRANDCHILD_PID_FILE:-}" ]; then
  sleep 60 &
  echo $! > "$GRANDCHILD_PID_FILE"
fi
echo "starting: $(wc -c < "$config") bytes of run config"
echo "TETRYX not-a-timestamp orbit.radius_km=1"
for i in $(seq 0 $((steps - 1))); do
  echo "TETRYX $((i * 10000000000)) orbit.radius_km=$((7000 - 100 * i)) orbit.speed_m_s=7.5e3"
  if [ "$sleep_after" = 1 ]; then sleep 0.05; fi
done
mkdir -p "$out/nested/deeper"
echo "t,r" > "$out/nested/deeper/trajectory.csv"
printf '{"run_config_arg": "%s", "run_config_env": "%s", "out_arg": "%s", "out_env": "%s"}\n' \
  "$config" "$TETRYX_RUN_CONFIG" "$out" "$TETRYX_OUTPUT_DIR" > "$out/summary.json"
if [ "$sleep_after" = 1 ]; then sleep 60; fi
