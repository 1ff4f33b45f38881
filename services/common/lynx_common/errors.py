"""Errors shared by the services' core modules (which import no gRPC)."""

from __future__ import annotations


class ValidationError(ValueError):
    """Bad user input; `field` is the dotted path of the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem
