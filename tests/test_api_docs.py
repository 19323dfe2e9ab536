"""Every public name has an API page with parameters, returns and an example.

The API reference (docs/api.rst) lists the public names in autosummary
blocks; this test keeps that list and the docstrings complete, so a new
public function without a page or an example fails the suite rather than
the docs build.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parent.parent
API_PAGE = ROOT / "docs" / "api.rst"
# The modules whose __all__ is the public API.
PUBLIC_MODULES = [
    "skvae",
    "skvae.conformal",
    "skvae.datasets",
    "skvae.distributed",
    "skvae.explain",
    "skvae.export",
    "skvae.nn",
    "skvae.plotting",
    "skvae.pyod_adapter",
    "skvae.scoring",
    "skvae.terms",
    "skvae.benchmark",
]


def documented_names():
    """Fully qualified names listed in the API page's autosummary blocks."""
    names, module = [], None
    for line in API_PAGE.read_text().splitlines():
        if match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match[1]
        elif re.match(r"   [A-Za-z_]\w*$", line):
            names.append(f"{module}.{line.strip()}")
    return names


def public_names():
    names = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                names.append(f"{module_name}.{name}")
    return names


def resolve(qualified_name):
    module_name, name = qualified_name.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), name)


def takes_parameters(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    if inspect.isclass(obj) and target is object.__init__:
        return False
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return any(name not in ("self", "args", "kwargs") for name in parameters)


def test_every_public_name_has_an_api_page():
    missing = sorted(set(public_names()) - set(documented_names()))
    assert not missing, f"add these to docs/api.rst: {missing}"


def test_api_page_lists_only_public_names():
    unknown = sorted(set(documented_names()) - set(public_names()))
    assert not unknown, f"not in any public module's __all__: {unknown}"


@pytest.mark.parametrize("qualified_name", documented_names())
def test_docstring_has_parameters_returns_and_example(qualified_name):
    obj = resolve(qualified_name)
    is_class = inspect.isclass(obj)
    doc = ClassDoc(obj) if is_class else FunctionDoc(obj)
    needed = ["Examples"]
    if takes_parameters(obj) and not issubclass_of_exception(obj):
        needed.append("Parameters")
    if not is_class:
        needed.append("Yields" if inspect.isgeneratorfunction(obj) else "Returns")
    missing = [section for section in needed if not doc[section]]
    assert not missing, f"{qualified_name}: docstring lacks {missing}"
    assert doc["Summary"], f"{qualified_name}: docstring lacks a summary line"


def issubclass_of_exception(obj):
    return inspect.isclass(obj) and issubclass(obj, BaseException)
