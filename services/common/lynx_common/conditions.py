"""Early-termination conditions such as "< 6371": parsed without eval, evaluated on telemetry."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from lynx_common.errors import ValidationError

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_PATTERN = re.compile(
    r"\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
)
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/\-\[\]]*")


def format_number(value: float) -> str:
    """A threshold or value as a person reads it: 6371, 0.00025, 7012345.678, 1e+300."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 18 else f"{value:g}"


@dataclass(frozen=True)
class Condition:
    """`variable <op> threshold`; fires when the latest value satisfies the comparison."""

    variable: str
    op: str
    threshold: float
    description: str = ""

    def fires(self, value: float) -> bool:
        """Whether `value` breaches the condition (NaN never fires)."""
        return not math.isnan(value) and OPERATORS[self.op](value, self.threshold)

    @property
    def comparison(self) -> str:
        """The operator and threshold, for example "< 6371"."""
        return f"{self.op} {format_number(self.threshold)}"

    def __str__(self) -> str:
        return f"{self.variable} {self.comparison}"


def parse_condition(variable: str, text: str, description: str = "", path: str = "condition") -> Condition:
    """Parse one condition; errors name `path` (for example early_termination.conditions[0])."""
    if not variable or not _VARIABLE.fullmatch(variable):
        raise ValidationError(f"{path}.variable", f"must be a telemetry variable name, got {variable!r}")
    match = _PATTERN.fullmatch(text or "")
    if not match:
        raise ValidationError(
            f"{path}.condition",
            f"must be an operator (<, <=, >, >=, ==, !=) and a number, like \"< 6371\"; got {text!r}",
        )
    threshold = float(match.group(2))
    if not math.isfinite(threshold):
        raise ValidationError(f"{path}.condition", f"threshold must be finite, got {text!r}")
    return Condition(variable, match.group(1), threshold, description)
