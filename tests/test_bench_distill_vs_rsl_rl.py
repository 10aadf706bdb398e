"""bench/distill_vs_rsl_rl.py's ablation of rsl_rl's setup: the student's exploration noise."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from distill_vs_rsl_rl import noisy_student_mix  # noqa: E402


def test_the_noisy_mixture_shakes_the_students_actions_only():
    mix = noisy_student_mix(0.1)
    teacher, student = torch.ones(4000, 2), torch.zeros(4000, 2)
    acted = mix(teacher, student, 0.0, torch.Generator().manual_seed(0))        # the student acts everywhere
    assert abs(float(acted.std()) - 0.1) < 0.005 and abs(float(acted.mean())) < 0.005
    assert torch.equal(mix(teacher, student, 1.0, torch.Generator().manual_seed(0)), teacher)   # the teacher: as it is
    again = mix(teacher, student, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(acted, again), "the noise comes from the rollout's generator: a seed repeats it"
