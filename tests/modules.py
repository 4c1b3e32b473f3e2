"""The installed package's modules, found through the import root (not the folders)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import streamrec

SUBPACKAGES = ("streamrec.models", "streamrec.streams", "streamrec.serving", "streamrec.infra")


def module_files() -> dict[str, Path]:
    """Module name -> source file, for every module under ``streamrec``.

    The layer packages are mapped into ``streamrec`` by the build backend, so each is
    walked from its own ``__path__`` (an editable install keeps them in their folders).
    """
    roots = [
        ("streamrec.", streamrec.__path__),
        *((f"{name}.", importlib.import_module(name).__path__) for name in SUBPACKAGES),
    ]
    files = {
        name.removesuffix("."): Path(importlib.import_module(name.removesuffix(".")).__file__ or "")
        for name, _ in roots
    }
    for prefix, path in roots:
        for info in pkgutil.walk_packages(path, prefix):
            spec = info.module_finder.find_spec(info.name, None)
            if spec is not None and spec.origin:
                files[info.name] = Path(spec.origin)
    return files
