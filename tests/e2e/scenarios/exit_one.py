"""A scenario that always fails: it writes a partial artifact, complains on stderr, exits 1."""

import os
import sys
from pathlib import Path

Path(os.environ["TETRYX_OUTPUT_DIR"], "partial.txt").write_text("started\n")
print("loading ephemeris...", file=sys.stderr)
print("FATAL: deliberate failure for the retry test", file=sys.stderr)
sys.exit(1)
