"""A fast CI scenario: y = 2x; it exits 1 when x > fail_above, and streams ci.x so a condition can stop it early."""

import json
import os
import sys
import time
from pathlib import Path

from lynx_telemetry_client import telemetry_client_from_env

config = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())
p = config["parameters"]
x = float(p["x"])
client = telemetry_client_from_env()
try:
    for step in range(3):
        client.send({"ci.x": x, "ci.step": float(step)}, timestamp_ns=step * 1_000_000_000)
        time.sleep(0.2 + float(p.get("sleep_s", 0.0)))  # room for the watchdog to act on a condition
finally:
    client.close()
summary = {"y": 2 * x, "passed": x <= p["fail_above"]}
Path(os.environ["TETRYX_OUTPUT_DIR"], "summary.json").write_text(json.dumps(summary))
if x > float(p["fail_above"]):
    print(f"x = {x:.3f} is above {p['fail_above']}", file=sys.stderr)
    sys.exit(1)
