"""Fixtures of the fault tests: one sampler process per session, a scheduler process per test."""

from __future__ import annotations

import pytest
from fault_harness import REPO, Stack

from lynx_cli import stack as lynx_stack


@pytest.fixture(scope="session")
def sampler_addr(tmp_path_factory):
    """One sampler process for every fault test (it keeps no state)."""
    sampler = lynx_stack.Stack(tmp_path_factory.mktemp("sampler"), lynx_stack.Ports(0, 0, 0, 0),
                              services=("sampler",), cwd=REPO, ready_timeout=30)
    with sampler:
        yield sampler.ports.sampler_addr


@pytest.fixture
def stack(tmp_path, sampler_addr):
    """A scheduler process on a fresh data directory; tests add runners."""
    s = Stack(tmp_path, sampler_addr)
    s.start_scheduler()
    yield s
    s.close()
