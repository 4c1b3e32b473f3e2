"""Every docstring example of the package runs and prints what it shows (river's habit).

Run through the installed import root, so each module is imported once, under its real
name (`streamrec.models.base`, not a path-derived copy).
"""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.modules import module_files


@pytest.mark.parametrize("name", sorted(name for name in module_files() if not name.endswith("__main__")))
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
