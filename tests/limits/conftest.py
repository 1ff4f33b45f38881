"""Fixtures of the limits tests: the scheduler harness (in-process) and the fault harness (processes)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for folder in ("scheduler", "faults"):
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from fault_harness import sampler_addr, stack  # noqa: E402, F401 - register the fixtures
from scheduler_harness import scheduler  # noqa: E402, F401 - registers the fixture
