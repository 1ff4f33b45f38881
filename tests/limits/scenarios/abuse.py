"""Limits-test scenario, by ABUSE_MODE: `files` writes ABUSE_FILES tiny outputs; `sparse` makes one
sparse output of ABUSE_BYTES; `family` starts a grandchild, records both pids in ABUSE_MARKS, sleeps."""

import os
import subprocess
import sys
import time
from pathlib import Path

out = Path(os.environ["TETRYX_OUTPUT_DIR"])
mode = os.environ["ABUSE_MODE"]
if mode == "files":
    for i in range(int(os.environ["ABUSE_FILES"])):
        (out / f"f{i:06d}.txt").write_bytes(b"x")
elif mode == "sparse":
    with open(out / "huge.bin", "wb") as f:
        os.truncate(f.fileno(), int(os.environ["ABUSE_BYTES"]))
elif mode == "family":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    marks = Path(os.environ["ABUSE_MARKS"])
    (marks / f"{os.getpid()}.pid").write_text("scenario")
    (marks / f"{child.pid}.pid").write_text("grandchild")
    time.sleep(120)
