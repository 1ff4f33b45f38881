"""The scheduler tests' fixtures live in scheduler_harness (importable by name)."""

from scheduler_harness import scheduler  # noqa: F401 - registers the fixture
