"""The early-termination watchdog: every sample since the last check counts, the first breach sticks."""

from __future__ import annotations

import math

import pytest

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx_common.errors import ValidationError
from lynx_runner.watchdog import Watchdog


def spec(*conditions: tuple[str, str, str], enabled: bool = True, hz: float = 10.0) -> cfg.EarlyTermination:
    return cfg.EarlyTermination(
        enabled=enabled,
        check_frequency_hz=hz,
        conditions=[cfg.TerminationCondition(variable=v, condition=c, description=d) for v, c, d in conditions],
    )


RADIUS = ("orbit.radius_km", "< 6371", "crashed into the Earth")
SPEED = ("orbit.speed_m_s", "> 12000", "")


def test_no_breach_while_values_are_fine():
    dog = Watchdog(spec(RADIUS, SPEED))
    assert dog.active
    for i in range(10):
        dog.observe(i * 10**9, {"orbit.radius_km": 6900.0 - i, "orbit.speed_m_s": 7600.0})
        assert dog.check() is None


def test_transient_breach_between_checks_is_not_missed():
    dog = Watchdog(spec(RADIUS))
    dog.observe(1_000_000_000, {"orbit.radius_km": 6400.0})
    dog.observe(2_000_000_000, {"orbit.radius_km": 6300.0})  # breach...
    dog.observe(3_000_000_000, {"orbit.radius_km": 6500.0})  # ...already recovered at check time
    breach = dog.check()
    assert breach is not None
    assert breach.value == 6300.0
    assert breach.timestamp_ns == 2_000_000_000
    assert breach.condition.variable == "orbit.radius_km"


def test_first_breach_in_arrival_order_wins_and_sticks():
    dog = Watchdog(spec(RADIUS, SPEED))
    dog.observe(5, {"orbit.radius_km": 7000.0, "orbit.speed_m_s": 13000.0})
    dog.observe(6, {"orbit.radius_km": 6000.0, "orbit.speed_m_s": 7000.0})
    first = dog.check()
    assert first is not None
    assert (first.condition.variable, first.value, first.timestamp_ns) == ("orbit.speed_m_s", 13000.0, 5)
    # later samples, breaching or not, do not replace it
    dog.observe(7, {"orbit.radius_km": 1.0})
    assert dog.check() == first
    assert dog.check() == first


def test_samples_already_checked_are_not_rechecked():
    dog = Watchdog(spec(("x", "> 50", "")))
    dog.observe(1, {"x": 10.0})
    assert dog.check() is None
    dog.observe(2, {"x": 20.0})
    assert dog.check() is None


def test_breach_message_names_condition_value_time_and_description():
    dog = Watchdog(spec(RADIUS))
    dog.observe(2_500_000_000, {"orbit.radius_km": 6300.5})
    message = dog.check().message()
    assert "orbit.radius_km < 6371" in message
    assert "6300.5" in message
    assert "2.5 s" in message
    assert "crashed into the Earth" in message


def test_message_without_description_has_no_dangling_separator():
    dog = Watchdog(spec(("x", "> 50", "")))
    dog.observe(0, {"x": 100.0})
    message = dog.check().message()
    assert "x > 50" in message and "100" in message
    assert not message.rstrip().endswith(":")


def test_disabled_watchdog_never_fires():
    dog = Watchdog(spec(RADIUS, enabled=False))
    assert not dog.active
    dog.observe(1, {"orbit.radius_km": 0.0})
    assert dog.check() is None


def test_enabled_without_conditions_is_inactive():
    dog = Watchdog(spec())
    assert not dog.active
    dog.observe(1, {"orbit.radius_km": 0.0})
    assert dog.check() is None


def test_nan_and_missing_variables_never_fire():
    dog = Watchdog(spec(RADIUS))
    dog.observe(1, {"orbit.radius_km": math.nan})
    dog.observe(2, {"orbit.speed_m_s": 0.0})
    dog.observe(3, {})
    assert dog.check() is None


@pytest.mark.parametrize(("hz", "period"), [(20.0, 0.05), (1.0, 1.0), (0.5, 2.0), (0.0, 1.0), (-3.0, 1.0)])
def test_period_follows_check_frequency(hz, period):
    assert Watchdog(spec(RADIUS, hz=hz)).period == pytest.approx(period)


def test_bad_condition_is_rejected_when_enabled_only():
    bad = ("x", "__import__('os')", "")
    with pytest.raises(ValidationError) as err:
        Watchdog(spec(bad))
    assert err.value.field.endswith(".condition")
    assert Watchdog(spec(bad, enabled=False)).check() is None
