"""The early-termination watchdog: checks every received sample against the job's conditions."""

from __future__ import annotations

from dataclasses import dataclass

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx_common.conditions import Condition, format_number, parse_condition

DEFAULT_CHECK_HZ = 1.0


@dataclass(frozen=True)
class Breach:
    """A condition that fired and the sample that fired it."""

    condition: Condition
    value: float
    timestamp_ns: int

    def message(self) -> str:
        text = (f"early termination: {self.condition} "
                f"(value {format_number(self.value)} at t={self.timestamp_ns / 1e9:g} s)")
        if self.condition.description:
            text += f": {self.condition.description}"
        return text


class Watchdog:
    """Buffers samples as they arrive; `check()`, called at check_frequency_hz, looks at all of them."""

    def __init__(self, spec: cfg.EarlyTermination) -> None:
        self.conditions = (
            [parse_condition(c.variable, c.condition, c.description) for c in spec.conditions]
            if spec.enabled
            else []
        )
        hz = spec.check_frequency_hz if spec.check_frequency_hz > 0 else DEFAULT_CHECK_HZ
        self.period = 1.0 / hz
        self._unchecked: list[tuple[int, dict[str, float]]] = []
        self.breach: Breach | None = None

    @property
    def active(self) -> bool:
        return bool(self.conditions)

    def observe(self, timestamp_ns: int, values: dict[str, float]) -> None:
        """Remember a sample for the next check (only while conditions exist and none fired)."""
        if self.conditions and self.breach is None:
            self._unchecked.append((timestamp_ns, values))

    def check(self) -> Breach | None:
        """Evaluate every sample since the last check, in arrival order; the first breach sticks."""
        pending, self._unchecked = self._unchecked, []
        for timestamp_ns, values in pending:
            if self.breach is not None:
                break
            for condition in self.conditions:
                value = values.get(condition.variable)
                if value is not None and condition.fires(value):
                    self.breach = Breach(condition, value, timestamp_ns)
                    break
        return self.breach
