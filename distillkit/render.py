"""The chapters rendered for instructors: each chapter executed in full (the budgets a learner runs,
not CI's FAST ones) and written as a page of HTML, and as slides made from its cells tagged ``slide``.

    python -m distillkit render-course            # docs/instructor/rendered/<chapter>.html and .slides.html

Slides use Jupyter's own exporter (reveal.js): a tagged markdown cell starts a slide, a tagged code
cell adds its output (without the code) as a sub-slide, and every untagged cell is skipped. Tag a
cell in JupyterLab (the property inspector, "Cell Tags") to put it on the slides.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat

from distillkit.artifacts import REPO_ROOT
from distillkit.atomic import write_text_atomic

SLIDE_TAG = "slide"
NOTEBOOKS = REPO_ROOT / "notebooks"
RENDERED = REPO_ROOT / "docs" / "instructor" / "rendered"


def slide_deck(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` holding its ``slide``-tagged cells only, with their reveal.js slide types."""
    deck = copy.deepcopy(nb)
    deck.cells = [c for c in deck.cells if SLIDE_TAG in c.get("metadata", {}).get("tags", [])]
    if not deck.cells:
        raise ValueError(f"{nb.metadata.get('name', 'notebook')}: no cell is tagged {SLIDE_TAG!r}; "
                         "tag the cells the slides should show")
    for cell in deck.cells:
        cell.metadata["slideshow"] = {"slide_type": "slide" if cell.cell_type == "markdown" else "subslide"}
    return deck


def execute(path: Path, fast: bool, timeout_s: int) -> nbformat.NotebookNode:
    """Run a chapter top to bottom in its own folder (``fast``: CI's tiny budgets)."""
    from nbclient import NotebookClient
    from traitlets.config import Config

    nb = nbformat.read(path, as_version=4)
    previous = os.environ.get("DISTILLKIT_FAST")
    os.environ["DISTILLKIT_FAST"] = "1" if fast else "0"        # the kernel inherits this process's environment
    try:
        # CurveZMQ-encrypted kernel channels: on plain TCP, ipykernel >= 7.4 warns at start-up, and the
        # warning can land in the first cell's output
        encrypted = Config({"KernelManager": {"transport_encryption": "auto"}})
        NotebookClient(nb, kernel_name="python3", config=encrypted, timeout=timeout_s,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if previous is None:
            os.environ.pop("DISTILLKIT_FAST")
        else:
            os.environ["DISTILLKIT_FAST"] = previous
    return nb


def render_chapter(path: Path, out: Path, *, fast: bool = False, timeout_s: int = 3600) -> list[Path]:
    """Execute one chapter and write ``<stem>.html`` and ``<stem>.slides.html`` into ``out``."""
    from nbconvert import HTMLExporter, SlidesExporter

    nb = execute(path, fast, timeout_s)
    nb.metadata["name"] = path.stem
    deck = slide_deck(nb)
    out.mkdir(parents=True, exist_ok=True)
    page, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    slides, _ = SlidesExporter(exclude_input=True).from_notebook_node(deck)
    written = [out / f"{path.stem}.html", out / f"{path.stem}.slides.html"]
    for target, text in zip(written, (page, slides)):
        write_text_atomic(target, text)
    return written
