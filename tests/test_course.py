"""The course around the chapters: each has objectives, learner time, predict-then-run prompts, a check for
understanding, takeaways and references; the quizzes load and answer right or wrong with the why."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from distillkit.quiz import QUIZZES, Question, Quiz, chapter_quiz, load_questions

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def markdown(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def course_problems(nb) -> list[str]:
    """What a chapter lacks of the course's scaffolding (empty: nothing)."""
    problems = []
    md = markdown(nb)
    objectives = next((s for s in md if s.startswith("## Learning objectives")), None)
    if objectives is None:
        problems.append("no '## Learning objectives' cell")
    else:
        count = len(re.findall(r"^\d+\. ", objectives, flags=re.M))
        if not 3 <= count <= 5:
            problems.append(f"{count} learning objectives (3-5 expected)")
        if "**Learner time:**" not in objectives:
            problems.append("no learner time with the objectives")
    sources = [c.source for c in nb.cells]
    prompts = [i for i, s in enumerate(sources) if s.startswith("**Predict before you run.**")]
    if not prompts:
        problems.append("no predict-then-run prompt")
    elif not all(any(c.cell_type == "code" for c in nb.cells[i + 1:i + 3]) for i in prompts):
        problems.append("a predict prompt without an experiment right after it")
    quiz = [s for s in sources if "chapter_quiz(" in s]
    if len(quiz) != 1:
        problems.append(f"{len(quiz)} chapter_quiz cells (1 expected)")
    else:
        chapter = re.search(r'chapter_quiz\("(\d\d)"\)', quiz[0])
        if chapter is None or not 3 <= len(load_questions(QUIZZES / f"{chapter.group(1)}.json")) <= 5:
            problems.append("the quiz is not a chapter's file of 3-5 questions")
    for header in ("## Takeaways", "## References"):
        if not any(s.startswith(header) and len(re.findall(r"^- ", s, flags=re.M)) >= 2 for s in md):
            problems.append(f"no '{header}' cell with at least two items")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_has_the_course_scaffolding(path):
    assert course_problems(nbformat.read(path, as_version=4)) == []


def test_the_scaffolding_check_names_what_a_chapter_lacks():
    nb = nbformat.read(NOTEBOOKS[2], as_version=4)
    nb.cells = [c for c in nb.cells if not c.source.startswith(("## Takeaways", "**Predict before you run.**"))]
    objectives = next(c for c in nb.cells if c.source.startswith("## Learning objectives"))
    objectives.source = objectives.source.replace("**Learner time:**", "Time:")
    assert course_problems(nb) == ["no learner time with the objectives", "no predict-then-run prompt",
                                   "no '## Takeaways' cell with at least two items"]


def test_a_quiz_says_right_or_wrong_and_why():
    quiz = chapter_quiz("02")
    question = quiz.questions[1]
    assert quiz.check(1) is None and "pick one" in quiz.feedback[1].value
    quiz.choices[1].value = "a" if question.answer != 0 else "b"
    quiz.buttons[1].click()
    assert quiz.feedback[1].value.startswith("✘ not quite") and "Pardo" in quiz.feedback[1].value
    quiz.choices[1].value = "abcdefgh"[question.answer]
    assert quiz.check(1) is True and quiz.feedback[1].value.startswith("✔ right.")


def test_every_quiz_file_loads():
    assert sorted(p.stem for p in QUIZZES.glob("*.json")) == [p.name[:2] for p in NOTEBOOKS]
    for path in QUIZZES.glob("*.json"):
        assert isinstance(Quiz(load_questions(path)), Quiz)


def test_a_bad_question_is_refused_with_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match=r"answer must index a choice \(0\.\.1\), got 2"):
        Question("p?", ("a", "b"), 2, "because")
    with pytest.raises(ValueError, match="needs its why"):
        Question("p?", ("a", "b"), 0, " ")
    bad = tmp_path / "07.json"
    bad.write_text(json.dumps([{"prompt": "p?", "choices": ["a", "b"], "answer": 0}]))
    with pytest.raises(ValueError, match=r"07\.json: question 1 needs exactly the keys \['answer', 'choices', 'prompt', 'why'\]"):
        load_questions(bad)


def test_slides_show_the_tagged_cells_only():
    from distillkit.render import slide_deck

    nb = nbformat.read(NOTEBOOKS[2], as_version=4)
    deck = slide_deck(nb)
    tagged = [c for c in nb.cells if "slide" in c.metadata.get("tags", [])]
    assert [c.source for c in deck.cells] == [c.source for c in tagged] and len(tagged) >= 5
    assert [c.metadata["slideshow"]["slide_type"] for c in deck.cells] == \
        ["slide" if c.cell_type == "markdown" else "subslide" for c in tagged]
    assert "slideshow" not in nb.cells[0].metadata, "the chapter itself is left as it was"
    for cell in nb.cells:
        cell.metadata["tags"] = []
    with pytest.raises(ValueError, match="no cell is tagged 'slide'"):
        slide_deck(nb)


def test_a_chapter_renders_to_html_and_slides(tmp_path):
    """Executed for real (a kernel runs it), written as a page with its code and as slides without."""
    from distillkit.render import render_chapter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter 9 — A test", metadata={"tags": ["slide"]}),
                nbformat.v4.new_code_cell("import os\nprint('FAST is', os.environ['DISTILLKIT_FAST'])",
                                          metadata={"tags": ["slide"]}),
                nbformat.v4.new_markdown_cell("an untagged note"),
                nbformat.v4.new_markdown_cell("## Takeaways\n\n- one", metadata={"tags": ["slide"]})]
    chapter = tmp_path / "09_test.ipynb"
    nbformat.write(nb, chapter)
    page, slides = render_chapter(chapter, tmp_path / "out", fast=True, timeout_s=120)
    assert (page.name, slides.name) == ("09_test.html", "09_test.slides.html")
    html = page.read_text()
    assert "FAST is 1" in html and "an untagged note" in html and "DISTILLKIT_FAST" in html
    assert "WARNING" not in html, "kernel log lines in the page"
    deck = slides.read_text()
    assert "reveal" in deck and "FAST is 1" in deck and "Takeaways" in deck
    assert "an untagged note" not in deck and "DISTILLKIT_FAST" not in deck, "slides: tagged cells only, no code"
