"""bench/time_to_quality.py's reading of two training curves: time to the target, returns at equal
wall-clock, and its refusal of a malformed setting."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from time_to_quality import compare, parse_setting  # noqa: E402


def curve(*points):
    return [{"seconds": s, "return": r} for s, r in points]


def test_time_to_target_and_returns_at_equal_wall_clock():
    ours = curve((1.0, 100.0), (2.0, 250.0), (3.0, 260.0))
    theirs = curve((0.5, 50.0), (1.5, 120.0), (2.5, 240.0), (4.0, 255.0))
    result = compare(ours, theirs, teacher_return=270.0)          # target 243
    assert result["distillkit_seconds_to_target"] == 2.0
    assert result["rsl_rl_seconds_to_target"] == 4.0
    assert result["time_ratio"] == 0.5
    # distillkit ends first (3 s): rsl_rl's latest score by then is the one at 2.5 s
    assert result["equal_wall_clock_s"] == 3.0
    assert (result["distillkit_return_at_equal"], result["rsl_rl_return_at_equal"]) == (260.0, 240.0)


def test_a_target_never_reached_takes_infinitely_long():
    ours = curve((1.0, 100.0), (2.0, 120.0))
    theirs = curve((1.0, 250.0))
    result = compare(ours, theirs, teacher_return=270.0)
    assert math.isinf(result["distillkit_seconds_to_target"]) and math.isinf(result["time_ratio"])
    assert math.isnan(compare(ours, ours, teacher_return=270.0)["time_ratio"])     # neither: no ratio


def test_settings_are_key_integer_pairs_of_known_fields():
    assert parse_setting("") == {}
    assert parse_setting("steps_per_round=60,grad_steps=100") == {"steps_per_round": 60, "grad_steps": 100}
    with pytest.raises(SystemExit, match="'lr=0.1'"):
        parse_setting("lr=0.1")
    with pytest.raises(SystemExit, match="'grad_steps=many'"):
        parse_setting("grad_steps=many")
