"""Checks for understanding: the questions that close each chapter, answered in the notebook.

A question has a few choices, the right one, and *why*. Pick a choice and press "check": the
feedback says right or not, and then why the right answer is right, so a wrong pick teaches too.
The questions live in ``distillkit/quizzes/<chapter>.json`` rather than in the notebook, so the
answers are not printed in the cell a learner runs::

    from distillkit.quiz import chapter_quiz
    chapter_quiz("02")

Headless use (tests): set a choice's ``.value`` and call ``button.click()``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets

QUIZZES = Path(__file__).resolve().parent / "quizzes"
LETTERS = "abcdefgh"          # a question's choices, as the learner picks them


@dataclass(frozen=True)
class Question:
    prompt: str
    choices: tuple[str, ...]
    answer: int            # index of the right choice
    why: str               # why the right choice is right (shown after every check)

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.prompt.strip():
            raise ValueError("Question.prompt is empty")
        if not 2 <= len(self.choices) <= len(LETTERS) or len(set(self.choices)) != len(self.choices):
            raise ValueError(f"Question {self.prompt[:40]!r}: expected 2 to {len(LETTERS)} distinct choices, "
                             f"got {self.choices}")
        if not (isinstance(self.answer, int) and 0 <= self.answer < len(self.choices)):
            raise ValueError(f"Question {self.prompt[:40]!r}: answer must index a choice "
                             f"(0..{len(self.choices) - 1}), got {self.answer!r}")
        if not self.why.strip():
            raise ValueError(f"Question {self.prompt[:40]!r}: a check for understanding needs its why")


class Quiz(widgets.VBox):
    """One block per question: the prompt with its lettered choices (HTML, so long choices wrap
    instead of being cut), a letter to pick, a "check" button and the feedback."""

    def __init__(self, questions: Sequence[Question]):
        if not questions:
            raise ValueError("a quiz needs at least one question")
        self.questions = list(questions)
        self.choices: list[widgets.RadioButtons] = []
        self.buttons: list[widgets.Button] = []
        self.feedback: list[widgets.HTML] = []
        blocks = []
        for i, q in enumerate(self.questions):
            letters = list(LETTERS[:len(q.choices)])
            choice = widgets.RadioButtons(options=letters, value=None, layout=widgets.Layout(width="auto"))
            button = widgets.Button(description="check", layout=widgets.Layout(width="8em"))
            feedback = widgets.HTML()
            button.on_click(lambda _, i=i: self.check(i))
            self.choices.append(choice)
            self.buttons.append(button)
            self.feedback.append(feedback)
            listed = "".join(f"<li>{html.escape(c)}</li>" for c in q.choices)
            prompt = widgets.HTML(f"<b>{i + 1}. {html.escape(q.prompt)}</b><ol type='a'>{listed}</ol>")
            blocks.append(widgets.VBox([prompt, choice, widgets.HBox([button, feedback])]))
        super().__init__(blocks)

    def check(self, i: int) -> bool | None:
        """Show question ``i``'s feedback; True if the picked choice is right, None if none is picked."""
        q, picked = self.questions[i], self.choices[i].value
        if picked is None:
            self.feedback[i].value = "pick one of the choices first"
            return None
        right = LETTERS.index(picked) == q.answer
        verdict = "✔ right." if right else \
            f"✘ not quite: the answer is ({LETTERS[q.answer]}) “{html.escape(q.choices[q.answer])}”."
        self.feedback[i].value = f"{verdict} {html.escape(q.why)}"
        return right


def load_questions(path: str | Path) -> list[Question]:
    """The questions of a quiz file: a JSON list of {prompt, choices, answer, why}."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable quiz file ({err})") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of questions, got {type(entries).__name__}")
    questions = []
    for k, entry in enumerate(entries):
        keys = {"prompt", "choices", "answer", "why"}
        if not isinstance(entry, dict) or set(entry) != keys:
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise ValueError(f"{path}: question {k + 1} needs exactly the keys {sorted(keys)}, got {got}")
        try:
            questions.append(Question(**entry))
        except ValueError as err:
            raise ValueError(f"{path}: question {k + 1}: {err}") from None
    return questions


def chapter_quiz(chapter: str) -> Quiz:
    """The check for understanding of chapter ``chapter`` ("00" .. "06")."""
    return Quiz(load_questions(QUIZZES / f"{chapter}.json"))
