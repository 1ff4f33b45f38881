"""Which fields each distribution type of a batch config takes: one table for the sampler's
validation, the REST parsing and the OpenAPI document."""

from __future__ import annotations

# type -> (required fields, optional fields); `type` and `levels` are not listed.
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "uniform": (("min", "max"), ()),
    "normal": (("mean", "std"), ()),
    "truncated_normal": (("mean", "std", "min", "max"), ()),
    "lognormal": (("mu", "sigma"), ()),
    "triangular": (("min", "mode", "max"), ()),
    "beta": (("alpha", "beta"), ("min", "max")),
    "exponential": (("rate",), ("min",)),
    "integer_uniform": (("min", "max"), ()),
    "choice": (("values",), ("weights",)),
    "constant": (("value",), ()),
}
# `levels` (grid sampling) applies to every type but these: their grid points are their values.
NO_LEVELS = ("choice", "constant")
