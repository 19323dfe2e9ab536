"""Doctest set-up: examples that write files write them to a temporary folder."""

import matplotlib
import pytest

matplotlib.use("Agg")  # docstring examples draw figures; no window


@pytest.fixture(autouse=True)
def doctest_in_tmp_path(request, tmp_path, monkeypatch):
    """Run each doctest in its own empty working folder."""
    if isinstance(request.node, pytest.DoctestItem):
        monkeypatch.chdir(tmp_path)
