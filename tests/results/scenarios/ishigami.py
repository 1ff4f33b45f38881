"""The Ishigami function as a Lynx scenario (stdlib only): reads x1, x2, x3 from TETRYX_RUN_CONFIG and writes
y = sin x1 + 7 sin^2 x2 + 0.1 x3^4 sin x1 to TETRYX_OUTPUT_DIR/summary.json (mean 3.5, variance 13.84,
first-order indices 0.314, 0.442, 0). Runs with x1 > 2.8 exit 1 after writing, a failure region of known
probability (0.34 / 2 pi)."""

import json
import math
import os
import sys
from pathlib import Path

parameters = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())["parameters"]
x1, x2, x3 = (float(parameters[k]) for k in ("x1", "x2", "x3"))
y = math.sin(x1) + 7.0 * math.sin(x2) ** 2 + 0.1 * x3**4 * math.sin(x1)
out = Path(os.environ["TETRYX_OUTPUT_DIR"])
out.mkdir(parents=True, exist_ok=True)
(out / "summary.json").write_text(json.dumps({"ishigami": {"y": y}, "x1_high": x1 > 2.8, "label": "ok"}))
if x1 > 2.8:
    sys.exit(1)
