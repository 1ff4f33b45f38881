"""Early-termination conditions: parsed without eval, evaluated on telemetry values."""

from __future__ import annotations

import math

import pytest

from lynx_common.conditions import parse_condition
from lynx_common.errors import ValidationError

PATH = "early_termination.conditions[2]"


@pytest.mark.parametrize(
    ("text", "op", "threshold"),
    [
        ("< 6371", "<", 6371.0),
        ("<6371", "<", 6371.0),
        ("  <=   6371.5  ", "<=", 6371.5),
        ("> -40", ">", -40.0),
        (">= -2.5E-3", ">=", -2.5e-3),
        ("<1e3", "<", 1000.0),
        ("== .5", "==", 0.5),
        ("!= +7", "!=", 7.0),
        ("< 5.", "<", 5.0),
        ("> 1e+2", ">", 100.0),
    ],
)
def test_accepts_every_operator_and_float_notation(text, op, threshold):
    condition = parse_condition("orbit.radius_km", text, "below the surface", PATH)
    assert condition.variable == "orbit.radius_km"
    assert condition.op == op
    assert condition.threshold == threshold
    assert condition.description == "below the surface"


@pytest.mark.parametrize(
    ("text", "fire", "hold"),
    [
        ("< 6371", [6370.9, -1.0], [6371.0, 7000.0]),
        ("<= 6371", [6371.0, 0.0], [6371.0001]),
        ("> 50", [50.5, 1e9], [50.0, -51.0]),
        (">= 50", [50.0, 51.0], [49.999]),
        ("== 0.5", [0.5], [0.4999, 0.5001]),
        ("!= 0", [1e-12, -3.0], [0.0, -0.0]),
    ],
)
def test_fires_exactly_when_the_comparison_holds(text, fire, hold):
    condition = parse_condition("x", text)
    for value in fire:
        assert condition.fires(value), (text, value)
    for value in hold:
        assert not condition.fires(value), (text, value)


@pytest.mark.parametrize("text", ["< 1", "> 1", "<= 1", ">= 1", "== 1", "!= 1"])
def test_nan_never_fires(text):
    assert not parse_condition("x", text).fires(math.nan)


def test_infinite_values_compare_like_numbers():
    assert parse_condition("x", "> 1e300").fires(math.inf)
    assert parse_condition("x", "< -1e300").fires(-math.inf)
    assert not parse_condition("x", "< 0").fires(math.inf)


def test_str_reads_like_the_condition():
    assert str(parse_condition("orbit.radius_km", "< 6371")) == "orbit.radius_km < 6371"
    assert str(parse_condition("x", ">= -2.5E-3")) == "x >= -0.0025"


@pytest.mark.parametrize(
    "text",
    [
        "6371",
        "<< 5",
        "< abc",
        "< 1; import os",
        "__import__('os')",
        "__import__('os').system('true') or < 1",
        "",
        "   ",
        "<",
        "= 5",
        "=< 5",
        "< 5 6",
        "< 5 and > 3",
        "< inf",
        "< nan",
        "< 1e999",
        "< 0x10",
        "< 1_000",
        "5 <",
        "> (5)",
    ],
)
def test_rejects_anything_but_operator_and_number(text):
    with pytest.raises(ValidationError) as err:
        parse_condition("orbit.radius_km", text, "", PATH)
    assert err.value.field == f"{PATH}.condition"
    assert str(err.value).startswith(f"{PATH}.condition ")


def test_none_text_is_rejected():
    with pytest.raises(ValidationError) as err:
        parse_condition("x", None, "", PATH)  # type: ignore[arg-type]
    assert err.value.field == f"{PATH}.condition"


@pytest.mark.parametrize(
    "variable",
    ["orbit.radius_km", "_private", "sc/pos[0]", "ns:value", "a-b", "X9"],
)
def test_accepts_telemetry_variable_names(variable):
    assert parse_condition(variable, "< 1").variable == variable


@pytest.mark.parametrize(
    "variable",
    [
        "",
        "9lives",
        ".hidden",
        "has space",
        "x;import os",
        "x<1",
        "__import__('os')",
        "orbit.radius_km\n",
    ],
)
def test_rejects_bad_variable_names(variable):
    with pytest.raises(ValidationError) as err:
        parse_condition(variable, "< 1", "", PATH)
    assert err.value.field == f"{PATH}.variable"


def test_bad_variable_is_reported_before_bad_condition():
    with pytest.raises(ValidationError) as err:
        parse_condition("", "nonsense", "", PATH)
    assert err.value.field == f"{PATH}.variable"


def test_default_path_is_condition():
    with pytest.raises(ValidationError) as err:
        parse_condition("x", "6371")
    assert err.value.field == "condition.condition"
