"""Fixtures of the CI gate tests (defined in ci_harness)."""

from ci_harness import live  # noqa: F401
