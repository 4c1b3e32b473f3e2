"""The package's layering, enforced: imports point down only, heavy libraries stay lazy.

Layers, bottom up (a module may import its own layer and the ones below):

    ground (streamrec.types, streamrec.settings) < models < streams < serving < infra

Every ``import streamrec.…`` in the source counts, also one inside a function: a lazy
import back up is still a back-edge.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.modules import module_files

LAYERS = ("ground", "models", "streams", "serving", "infra")
GROUND = {"streamrec", "streamrec.types", "streamrec.settings", "streamrec.__main__"}


def layer_of(module: str) -> str:
    """``streamrec.models.base`` -> ``models``; the root package's modules are the ground."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "ground"


def imports_of(path: Path) -> set[str]:
    """Every ``streamrec.*`` module a file imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return {name for name in found if name.split(".")[0] == "streamrec"}


def back_edges(files: dict[str, Path]) -> list[str]:
    edges = []
    for module, path in files.items():
        if module == "streamrec.__main__":  # the entry point: it starts the top layer
            continue
        rank = LAYERS.index(layer_of(module))
        for target in imports_of(path):
            if target != "streamrec" and LAYERS.index(layer_of(target)) > rank:
                edges.append(f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})")
    return sorted(edges)


def test_every_layer_has_modules() -> None:
    assert {layer_of(m) for m in module_files()} == set(LAYERS)


def test_imports_point_down_only() -> None:
    assert back_edges(module_files()) == []


def test_the_check_catches_a_back_edge(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from streamrec.infra.stack import Stack\n")
    assert back_edges({"streamrec.models.bad": bad}) == [
        "streamrec.models.bad (models) imports streamrec.infra.stack (infra)",
        "streamrec.models.bad (models) imports streamrec.infra.stack.Stack (infra)",
    ]


def test_ground_loads_nothing_but_the_standard_library() -> None:
    probe = (
        "import sys\nbefore = set(sys.modules)\nimport streamrec.types, streamrec.settings\n"
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert set(loaded) - {"streamrec"} <= set(sys.stdlib_module_names), loaded


HEAVY = ("torch", "faust", "faiss", "transformers", "safetensors")


def loaded_after(code: str) -> list[str]:
    """Which heavy libraries a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize(
    "code",
    [
        "from click.testing import CliRunner\nfrom streamrec.infra.cli import main\n"
        "assert CliRunner().invoke(main, ['--help']).exit_code == 0",
        "import streamrec.serving.app",
    ],
    ids=["cli-help", "serving"],
)
def test_help_and_server_do_not_load_heavy_libraries(code: str) -> None:
    assert loaded_after(code) == []
