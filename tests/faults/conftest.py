"""Fixtures of the fault tests: one sampler process per session, a scheduler process per test."""

from fault_harness import sampler_addr, stack  # noqa: F401 - the fixtures, shared with tests/limits
