"""Check helpers for the graded exercises: one function per check cell.

Every helper runs a list of small checks on deterministic inputs, with tolerances, against the
learner's functions. It prints exactly one stable line when all pass,

    PASS <name>: k/k checks

and otherwise raises :class:`CheckFailed` naming each failed check with a hint. That line is the
check cell's stored output in the exercise, so nbval (``--nbval-lax``, cells marked
``# NBVAL_CHECK_OUTPUT``) fails the cell on any exception and on any other output. Whatever the
learner's code prints while it is checked is swallowed, so a debugging ``print`` cannot fail a
correct answer.

The ``*_closed_loop`` helpers run the learner's code inside the real pipeline on the quick task
(the shipped cart-pole teacher, the MuJoCo engine, held-out seeds) and check what comes out: a
student that balances the pole, a teacher that balances through the learner's manifest. The
design exercise (06) checks the learner's choices on the flagship walker's real env; the analysis
exercise (07) runs the learner's experiment and checks its results against ranges.

Every ``check_*`` helper is :func:`~distillkit.grading.replay.graded`: in the grader's sandbox it
records each call to the learner's functions, and the grade comes from running the helper again
in the grader's own process on those records (see :mod:`distillkit.grading.replay`). So a helper
calls the learner's functions only on inputs it builds itself (copies, :func:`~common.fresh`, of
anything it uses again), computes expected values only with the package, never with learner code,
and calls the package's own answer to its exercise only after the learner's calls (in the sandbox
that answer is unavailable and raises; the replay outside has it).

One module per exercise, named as in ``exercises/``; the check cells import from this package.
"""

from distillkit.grading.checks.common import CheckFailed, Checks, shipped_teacher, student_return
from distillkit.grading.checks.ex01_schema_manifest import (
    check_manifest,
    check_manifest_closed_loop,
    check_privileged_inputs,
)
from distillkit.grading.checks.ex02_gae_timeouts import check_bootstrap, check_gae, check_gae_closed_loop
from distillkit.grading.checks.ex03_masked_distillation import check_masked_loss, check_masked_loss_closed_loop
from distillkit.grading.checks.ex04_dagger_round import check_dagger_closed_loop, check_dagger_round, check_mix_actions
from distillkit.grading.checks.ex05_student_only import (
    check_counterfactual_probe,
    check_student_only,
    check_student_only_closed_loop,
)
from distillkit.grading.checks.ex06_design import (
    check_design_masks,
    check_design_proof,
    check_design_schema,
    check_design_student,
)
from distillkit.grading.checks.ex07_mask_analysis import check_mask_experiment, check_paired_comparison

__all__ = [
    "CheckFailed", "Checks", "shipped_teacher", "student_return",
    "check_manifest", "check_privileged_inputs", "check_manifest_closed_loop",
    "check_gae", "check_bootstrap", "check_gae_closed_loop",
    "check_masked_loss", "check_masked_loss_closed_loop",
    "check_mix_actions", "check_dagger_round", "check_dagger_closed_loop",
    "check_student_only", "check_counterfactual_probe", "check_student_only_closed_loop",
    "check_design_schema", "check_design_student", "check_design_masks", "check_design_proof",
    "check_paired_comparison", "check_mask_experiment",
]
