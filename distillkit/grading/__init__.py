"""Graded exercises: check helpers (:mod:`.checks`), the exercise generator (:mod:`.generate`:
``solutions/`` -> ``exercises/``) and the nbval grader (:mod:`.grade`: ``distillkit grade``)."""

import sys

# nbformat (the generator, the grader) validates with jsonschema, whose optional IRI format checker
# imports rfc3987_syntax, which builds a grammar for ~2.6 s: notebooks hold no IRI, and the grader's
# start is on every grade's clock. Without it jsonschema just skips that format.
sys.modules.setdefault("rfc3987_syntax", None)
