"""The results generator's writing: templates filled completely, sections replaced one by one."""

import pytest

from distillkit.results import SECTIONS, regenerate
from distillkit.results.report import TEMPLATES, render, write_section


def test_a_template_needs_every_value_and_fills_it_in():
    text = render("collapse", task="walker_rough", table="| a |", measured="Measured today.")
    assert text.startswith("### walker_rough") and "| a |" in text and "$" not in text
    with pytest.raises(KeyError, match="table"):
        render("collapse", task="walker_rough", measured="Measured today.")
    assert sorted(p.stem for p in TEMPLATES.glob("*.md")) == sorted([*SECTIONS, "claims_summary"])


def test_writing_one_section_leaves_the_others_as_they_were(tmp_path):
    doc = tmp_path / "results.md"
    write_section("teachers_cartpole", "old cart-pole", doc)
    write_section("teachers_walker_rough", "walker", doc)
    write_section("teachers_cartpole", "new cart-pole", doc)
    text = doc.read_text()
    assert "new cart-pole" in text and "old cart-pole" not in text and "walker" in text
    assert text.index("teachers_cartpole:begin") < text.index("teachers_walker_rough:begin")


def test_an_unknown_section_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown results sections \['teacher'\]"):
        regenerate(["teacher"], ["cartpole"], None, 1)
