"""Fault-test scenario: records its pid, sleeps FAULT_SLEEP seconds, writes an artifact, exits FAULT_EXIT.

Files go to FAULT_PID_DIR: `<job_id>.<pid>.pid` (content: FAULT_RUNNER) when it starts and
`<job_id>.<pid>.done` when it ran to the end, so a test can tell which processes ran and whether
any still runs.
"""

import json
import os
import sys
import time
from pathlib import Path

job_id = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())["metadata"]["job_id"]
marks = Path(os.environ["FAULT_PID_DIR"])
stem = f"{job_id}.{os.getpid()}"
(marks / f"{stem}.pid").write_text(os.environ.get("FAULT_RUNNER", ""))
time.sleep(float(os.environ.get("FAULT_SLEEP", "1")))
Path(os.environ["TETRYX_OUTPUT_DIR"], "result.txt").write_text(f"{job_id} done\n")
(marks / f"{stem}.done").write_text("")
code = int(os.environ.get("FAULT_EXIT", "0"))
if code:
    print("deliberate failure", file=sys.stderr)
sys.exit(code)
