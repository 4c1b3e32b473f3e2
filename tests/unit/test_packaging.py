"""One import root, proven: the wheel and the installed distribution provide `streamrec` only.

The repository keeps four layer folders beside ``streamrec/``; the build maps them under
``streamrec`` (pyproject's [tool.setuptools.package-dir]). A mapping mistake would install
``models``, ``streams``... as top-level packages of their own, shadowing anything else
with those names: both checks below would see them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST = PYPROJECT["project"]["name"]
# Building a wheel (setuptools, no dependencies, no isolation) takes a few seconds.
WHEEL_BUILD_S = 120.0


def top_level_names(paths: list[str]) -> set[str]:
    """Importable top-level names among a distribution's file paths (metadata and scripts aside).

    >>> sorted(top_level_names(["streamrec/types.py", "x-1.0.dist-info/RECORD", "../../bin/x", "six.py"]))
    ['six', 'streamrec']
    """
    names = set()
    for path in paths:
        first = path.split("/")[0]
        if first in ("..", "__pycache__") or first.endswith((".dist-info", ".data", ".pth")):
            continue
        names.add(first.removesuffix(".py"))
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regular (non-editable) wheel built from a copy of the sources the build reads."""
    source = tmp_path_factory.mktemp("source")
    for folder in PYPROJECT["tool"]["setuptools"]["package-dir"].values():
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), "."]
    subprocess.run(command, cwd=source, check=True, timeout=WHEEL_BUILD_S, capture_output=True)
    (built,) = out.glob("*.whl")
    return built


@pytest.mark.timeout(WHEEL_BUILD_S * 1.5)
def test_the_wheel_holds_streamrec_and_its_metadata_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert archive.read(top_level).decode().split() == ["streamrec"]
    assert {n.split("/")[0] for n in names} == {"streamrec", f"{DIST}-0.1.0.dist-info"}
    assert top_level_names(names) == {"streamrec"}
    # Every layer folder landed inside the root, with its modules.
    for layer in ("models", "streams", "serving", "infra", "infra/commands"):
        assert f"streamrec/{layer}/__init__.py" in names, layer
    assert "streamrec/infra/report_template.html" in names
    assert "streamrec/serving/dashboard.html" in names


def test_the_installed_distribution_provides_no_other_top_level_name() -> None:
    purelib = sysconfig.get_path("purelib")
    (dist,) = importlib.metadata.distributions(name=DIST, path=[purelib])
    assert (dist.read_text("top_level.txt") or "").split() == ["streamrec"]
    files = [str(f) for f in dist.files or []]
    # An editable install provides its names through a finder mapping name -> folder.
    finders = [Path(f).stem for f in files if Path(f).name.startswith("__editable__") and f.endswith("_finder.py")]
    provided = top_level_names([f for f in files if not Path(f).name.startswith("__editable__")])
    for finder in finders:
        provided |= {name.split(".")[0] for name in importlib.import_module(finder).MAPPING}
    assert provided == {"streamrec"}
