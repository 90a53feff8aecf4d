"""What an install elsewhere relies on: the distribution's name and metadata, ranges in the
dependencies with their exact tested versions in constraints.txt, DALI only where it exists,
and imports that work without Unix-only modules."""

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import fat
from fat.core.errors import FatError
from fat.train.loaders import choose_loader

ROOT = Path(__file__).parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {Requirement(name).name.lower(): version for name, version in pairs}


def test_distribution_name_version_and_license():
    assert PROJECT["name"] == "fat-audio"  # "fat" on the index is another project
    assert "version" in PROJECT["dynamic"] and metadata.version("fat-audio") == fat.__version__
    assert PROJECT["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT")
    assert "Programming Language :: Python :: 3.11" in PROJECT["classifiers"]
    assert PROJECT["scripts"]["fat"] == "fat.cli:main"


def test_dependencies_are_ranges_whose_tested_versions_are_pinned():
    pinned = pins()
    extras = [r for group in PROJECT["optional-dependencies"].values() for r in group]
    for text in PROJECT["dependencies"] + extras:
        req = Requirement(text)
        # A floor, and at most a cap below a known break (setuptools 81 dropped pkg_resources).
        operators = {s.operator for s in req.specifier}
        assert ">=" in operators and operators <= {">=", "<"}, f"{text}: a range, not a pin"
        name = req.name.lower()
        assert name in pinned, f"{name}: no exact version in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), (text, pinned[name])
    dali = next(Requirement(t) for t in PROJECT["dependencies"] if "dali" in t)
    # Built for CUDA 13 like torch's Linux wheels; Linux only (elsewhere: a 0.0.0 placeholder).
    assert dali.name == "nvidia-dali-cuda130"
    assert dali.marker is not None and not dali.marker.evaluate({"sys_platform": "darwin"})
    assert dali.marker.evaluate({"sys_platform": "linux"})
    runtime = {Requirement(t).name for t in PROJECT["dependencies"]}
    assert not runtime & {"pytest", "ruff"}  # test and lint tools are the `test` extra's


def test_loader_auto_is_dali_where_it_imports_else_torch(monkeypatch):
    assert choose_loader("auto") == ("dali", "input: dali loader (--loader auto)")
    monkeypatch.setitem(sys.modules, "nvidia.dali", None)  # as where DALI is not installed
    kind, line = choose_loader("auto")
    assert kind == "torch" and "DALI unavailable" in line and "nvidia.dali" in line
    with pytest.raises(FatError, match="--loader dali: nvidia-dali is not usable here"):
        choose_loader("dali")
    assert choose_loader("torch")[0] == "torch"


def test_the_store_imports_where_fcntl_does_not_exist():
    code = (
        "import sys; sys.modules['fcntl'] = None\n"  # Windows has no fcntl
        "import fat.store, fat.runs.directory; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
