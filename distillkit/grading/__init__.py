"""Graded exercises: check helpers (:mod:`.checks`), the exercise generator (:mod:`.generate`:
``solutions/`` -> ``exercises/``) and the nbval grader (:mod:`.grade`: ``distillkit grade``)."""
