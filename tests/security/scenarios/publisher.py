"""Security-test scenario: publishes one telemetry sample through the client library, sleeps
SEC_SLEEP seconds (so a test can act on a running job), writes an artifact and exits 0."""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "clients" / "python"))
from lynx_telemetry_client import telemetry_client_from_env  # noqa: E402

client = telemetry_client_from_env()
client.send({"x": 1.0}, timestamp_ns=1_000_000_000)
client.flush()
time.sleep(float(os.environ.get("SEC_SLEEP", "0.5")))
client.send({"x": 2.0}, timestamp_ns=2_000_000_000)
client.close()
Path(os.environ["TETRYX_OUTPUT_DIR"], "result.txt").write_text(f"sent {client.sent} dropped {client.dropped}\n")
