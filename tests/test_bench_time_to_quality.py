"""bench/time_to_quality.py's reading of two training curves: time to the target, returns at equal
wall-clock, the final returns in its table, its refusal of a malformed setting, and the repeats it
saves for --resume."""

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from time_to_quality import compare, docs_table, json_safe, parse_setting, saved_rows  # noqa: E402


def curve(*points, cpu_share=1.0):
    """Scores at (wall-clock s, return); the process had ``cpu_share`` of a core (CPU time = share x wall clock)."""
    return [{"seconds": s, "cpu_seconds": s * cpu_share, "return": r} for s, r in points]


def test_time_to_target_and_returns_at_equal_wall_clock():
    ours = curve((1.0, 100.0), (2.0, 250.0), (3.0, 260.0), cpu_share=0.5)      # it waited for a core half the time
    theirs = curve((0.5, 50.0), (1.5, 120.0), (2.5, 240.0), (4.0, 255.0))
    result = compare(ours, theirs, teacher_return=270.0)          # target 243
    assert result["distillkit_seconds_to_target"] == 2.0
    assert result["rsl_rl_seconds_to_target"] == 4.0
    assert result["time_ratio"] == 0.5
    assert result["cpu_time_ratio"] == 0.25                      # 1 s of CPU time / 4 s
    # distillkit ends first (3 s): rsl_rl's latest score by then is the one at 2.5 s
    assert result["equal_wall_clock_s"] == 3.0
    assert (result["distillkit_return_at_equal"], result["rsl_rl_return_at_equal"]) == (260.0, 240.0)


def test_a_target_never_reached_takes_infinitely_long():
    ours = curve((1.0, 100.0), (2.0, 120.0))
    theirs = curve((1.0, 250.0))
    result = compare(ours, theirs, teacher_return=270.0)
    assert math.isinf(result["distillkit_seconds_to_target"]) and math.isinf(result["time_ratio"])
    assert math.isnan(compare(ours, ours, teacher_return=270.0)["time_ratio"])     # neither: no ratio


def test_settings_are_key_value_pairs_of_known_fields():
    assert parse_setting("") == {}
    assert parse_setting("steps_per_round=60,grad_steps=100,lr_final=1e-4") == {
        "steps_per_round": 60, "grad_steps": 100, "lr_final": 1e-4}
    with pytest.raises(SystemExit, match="'beta=0.1'"):
        parse_setting("beta=0.1")
    with pytest.raises(SystemExit, match="grad_steps takes an integer, got 'many'"):
        parse_setting("grad_steps=many")
    with pytest.raises(SystemExit, match="rounds takes an integer, got '1.5'"):
        parse_setting("rounds=1.5")
    assert parse_setting("lr_final=none") == {"lr_final": None}
    with pytest.raises(SystemExit, match="lr_final takes a number or none, got 'off'"):
        parse_setting("lr_final=off")


def test_the_table_gives_each_settings_final_return_over_seeds():
    theirs = curve((1.0, 200.0), (5.0, 250.0))
    rows = []
    for seed, final in enumerate((250.0, 230.0, 290.0)):
        ours = curve((1.0, 245.0), (2.0, final))
        rows.append({"task": "cartpole", "setting": "student budget", "seed": seed, "teacher_return": 270.0,
                     **compare(ours, theirs, teacher_return=270.0), "curves": {"distillkit": ours, "rsl_rl": theirs}})
    args = type("Args", (), {"seeds": [0, 1, 2], "eval_seeds": 2})()
    row = docs_table({"date": "today", "machine": "here", "command": "python bench/time_to_quality.py", "rows": rows},
                     args).splitlines()[-1]
    # the final returns 250, 230, 290: mean 256.7 (median 250), sample std 30.6; the first scores play no part
    assert row.endswith("| 256.7 ± 30.6 |"), row


def test_a_resumed_run_reads_a_time_never_reached_as_infinite_again(tmp_path):
    ours, theirs = curve((1.0, 250.0)), curve((1.0, 100.0), (2.0, 120.0))         # rsl_rl never reaches 243
    row = {"task": "walker_rough", "setting": "student budget", "seed": 0, "teacher_return": 270.0,
           **compare(ours, theirs, teacher_return=270.0), "curves": {"distillkit": ours, "rsl_rl": theirs}}
    assert row["rsl_rl_seconds_to_target"] == math.inf and row["time_ratio"] == 0.0
    path = tmp_path / "time_to_quality.json"
    path.write_text(json.dumps(json_safe({"rows": [row]})))
    assert json.loads(path.read_text())["rows"][0]["rsl_rl_seconds_to_target"] is None     # JSON has no infinity
    (saved,) = saved_rows(path)
    assert saved["rsl_rl_seconds_to_target"] == math.inf and saved["time_ratio"] == 0.0
    assert saved_rows(tmp_path / "missing.json") == []
