"""The results tests' scheduler (imported by name): `scheduler_at` from the scheduler harness, with
real sampler and scheduler gRPC servers on port 0 and a real SQLite file, which a test can stop and
start again on the same data dir."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "scheduler"))  # scheduler_harness

from scheduler_harness import scheduler_at  # noqa: E402, F401 - re-exported for the results tests
