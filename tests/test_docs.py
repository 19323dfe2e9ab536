"""Every Python code block in the README and in docs/ runs.

The blocks of one page run in order in one namespace (a page may build on
its earlier blocks), in a temporary working folder, so a stale snippet fails
the suite. A block that cannot run here (it needs GPUs or ``torchrun``) is
preceded by a ``<!-- not run: reason -->`` comment, and the reason is kept
short and specific.
"""

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]
)
FENCE = re.compile(
    r"(?P<marker><!-- not run: (?P<reason>[^>]*) -->\s*\n)?"
    r"^```python\n(?P<code>.*?)^```\s*$",
    re.MULTILINE | re.DOTALL,
)


def python_blocks(page):
    """``(code, reason_not_run)`` for every ```python block of ``page``."""
    return [
        (match["code"], match["reason"])
        for match in FENCE.finditer(page.read_text(encoding="utf-8"))
    ]


PAGES_WITH_CODE = [page for page in PAGES if python_blocks(page)]


def test_blocks_are_found():
    readme_blocks = python_blocks(ROOT / "README.md")
    assert readme_blocks and readme_blocks[0][1] is None
    assert len(PAGES_WITH_CODE) >= 5


@pytest.mark.parametrize(
    "page", PAGES_WITH_CODE, ids=[str(p.relative_to(ROOT)) for p in PAGES_WITH_CODE]
)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for number, (code, reason) in enumerate(python_blocks(page), start=1):
        if reason is not None:
            assert reason.strip(), f"block {number}: say why it is not run"
            continue
        where = f"{page.relative_to(ROOT)}, python block {number}"
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, where, "exec"), namespace)  # noqa: S102


def test_fence_finds_skip_markers():
    text = "<!-- not run: needs GPUs -->\n```python\nx = 1\n```\n```python\ny\n```\n"
    blocks = [(m["code"], m["reason"]) for m in FENCE.finditer(text)]
    assert blocks == [("x = 1\n", "needs GPUs"), ("y\n", None)]


@pytest.mark.multiprocess
def test_a_quick_loop_leaves_the_docs_checks_out():
    # A -m on the command line replaces the one in addopts; the conftest's
    # hook still keeps the docs checks for a -m that names them.
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q"]
    command += ["-p", "no:cacheprovider", "-m", "not slow", str(Path(__file__))]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert "deselected" in result.stdout, result.stdout
    assert "test_code_blocks_run" not in result.stdout, result.stdout
