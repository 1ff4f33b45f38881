"""Every size, count and rate limit of Lynx in one table, each overridable by an environment variable.

A limit's value is read when it is checked, so `LYNX_LIMIT_<NAME>=<whole number>` in a service's
environment (or `lynx up --limit NAME=VALUE`, which sets it for every service) overrides the default.
docs/limits.md is the reference; tests/limits/test_limits_table.py keeps it in step with this table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from lynx_common.errors import ValidationError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limit:
    """One limit: its default, what it bounds, and what exceeding it answers."""

    name: str
    default: int
    bounds: str  # what is limited
    error: str  # what exceeding it answers

    @property
    def env(self) -> str:
        """The environment variable that overrides the default."""
        return f"LYNX_LIMIT_{self.name.upper()}"

    @property
    def value(self) -> int:
        """The limit in force: the environment's override, else the default."""
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise ValueError(f"{self.env} must be a whole number, got {raw!r}") from None
        if value < 1:
            raise ValueError(f"{self.env} must be at least 1, got {value}")
        return value


TABLE = (
    Limit("http_body_bytes", 16 * MIB, "bytes of one HTTP request body", "413, field null"),
    Limit("json_depth", 32, "nesting depth of a JSON request body", "400, field `body`"),
    Limit("string_chars", 4096, "characters of any one string (or key) in a JSON request body",
          "400, the field's path"),
    Limit("name_chars", 256, "characters of a batch name", "400 / INVALID_ARGUMENT, field `name`"),
    Limit("batch_runs", 1_000_000, "runs in one batch (submitted plus extended)",
          "400 / INVALID_ARGUMENT, field `config.monte_carlo.runs` (or `runs`)"),
    Limit("dispersions", 1000, "dispersions in one batch config", "400 / INVALID_ARGUMENT, field `config.dispersions`"),
    Limit("outputs", 1000, "names in `results.outputs`", "400 / INVALID_ARGUMENT, field `config.results.outputs`"),
    Limit("output_files", 1000, "output files a job's result lists (the rest are counted in its notes)",
          "the result lists the first N files and a note with the total"),
    Limit("grpc_message_bytes", 32 * MIB, "bytes of one gRPC message, sent or received, on every service",
          "RESOURCE_EXHAUSTED"),
    Limit("page_size", 1000, "jobs in one page of `GET /batches/{id}/jobs` when `?limit=` is not given",
          "a `next_page_token` for the next page"),
    Limit("max_page_size", 10_000, "largest `?limit=` of `GET /batches/{id}/jobs`", "400, field `limit`"),
    Limit("streams_per_client", 8, "concurrent `/batches/{id}/telemetry/stream` connections of one client address",
          "429, field null"),
    Limit("requests_per_second", 500, "HTTP requests per second of one client address (a burst of twice that "
          "passes)", "429, field null"),
    Limit("publish_samples_per_second", 500_000, "telemetry samples per second telemetry-ingest takes for one job "
          "(a burst of twice that passes; the runner's relay retries later)", "RESOURCE_EXHAUSTED"),
    Limit("cancel_chunk", 5000, "jobs one UPDATE cancels before the scheduler yields to other calls",
          "(none: a cancel of any size completes)"),
)
LIMITS = {limit.name: limit for limit in TABLE}


def value(name: str) -> int:
    """The limit `name` in force (KeyError for a name not in TABLE)."""
    return LIMITS[name].value


def check_count(name: str, field: str, count: int) -> None:
    """ValidationError naming `field` and the limit when `count` exceeds limit `name`."""
    cap = value(name)
    if count > cap:
        raise ValidationError(field, f"has {count} items; the limit is {cap} ({LIMITS[name].env})")


def check_length(name: str, field: str, text: str) -> None:
    """ValidationError naming `field` and the limit when `text` is longer than limit `name`."""
    cap = value(name)
    if len(text) > cap:
        raise ValidationError(field, f"is {len(text)} characters long; the limit is {cap} ({LIMITS[name].env})")


def check_json(document: object, field: str = "body") -> None:
    """Depth and string-length limits of a parsed JSON document (iterative: no recursion on deep input)."""
    depth_cap, chars_cap = value("json_depth"), value("string_chars")
    stack: list[tuple[object, str, int]] = [(document, field, 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            if len(node) > chars_cap:
                raise ValidationError(path, f"is {len(node)} characters long; the limit is {chars_cap} "
                                            f"({LIMITS['string_chars'].env})")
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > depth_cap:
            raise ValidationError("body", f"is nested deeper than {depth_cap} levels ({LIMITS['json_depth'].env})")
        items: Iterator = iter(node.items()) if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(key, str) and len(key) > chars_cap:
                raise ValidationError(path, f"has a key {len(key)} characters long; the limit is {chars_cap} "
                                            f"({LIMITS['string_chars'].env})")
            where = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]"
            stack.append((child, where if path != "body" else str(key) if isinstance(key, str) else where, depth + 1))


class TokenBuckets:
    """One token bucket per key (a client address, a job): `rate` tokens a second, a burst of twice that.
    `take(key, cost, rate)` spends `cost` tokens; it refuses only while the bucket holds less than one
    token (so one request larger than the burst passes, and puts the bucket in debt)."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, cost: float, rate: float) -> bool:
        now = time.monotonic()
        tokens, then = self.buckets.get(key, (2.0 * rate, now))
        tokens = min(2.0 * rate, tokens + (now - then) * rate)
        if len(self.buckets) > self.max_keys:  # forget idle keys rather than grow without bound
            self.buckets.clear()
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return False
        self.buckets[key] = (tokens - cost, now)
        return True
