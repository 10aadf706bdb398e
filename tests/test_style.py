"""The style check `make test` runs first (`ruff check`, configured in pyproject.toml) really
checks: it refuses code with an unused import or unsorted imports, and accepts the fixed code."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"),
                           "--output-format", "concise", str(path)], capture_output=True, text=True)


def test_ruff_refuses_an_unused_import_and_unsorted_imports_and_accepts_the_fix(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nimport os\n\nfrom distillkit.schema import Field\n\nprint(Field)\n")
    result = ruff(bad)
    assert result.returncode != 0 and "F401" in result.stdout and "I001" in result.stdout, result.stdout
    good = tmp_path / "good.py"
    good.write_text("from distillkit.schema import Field\n\nprint(Field)\n")
    assert ruff(good).returncode == 0
