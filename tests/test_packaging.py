"""pyproject.toml and requirements/pi.txt name the same runtime, so `pip install .` and setup.sh agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
APT_ON_THE_PI = {"numpy"}  # python3-numpy from apt: in pyproject, deliberately not in requirements/pi.txt
RUNTIME_EXTRA = "litert"  # the TFLite runtime: an extra, because tflite-runtime may stand in for it


def requirements_file(path: Path) -> dict[str, Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    requirements = [Requirement(line) for line in lines if line and not line.startswith("-")]
    return {r.name.lower(): r for r in requirements}


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_pyproject_and_pi_requirements_name_the_same_packages():
    project = pyproject()
    dependencies = {Requirement(d).name.lower() for d in project["dependencies"]}
    runtime = {Requirement(d).name.lower() for d in project["optional-dependencies"][RUNTIME_EXTRA]}
    pi = set(requirements_file(REPO / "requirements" / "pi.txt"))
    assert pi - (dependencies | runtime) == set(), "in requirements/pi.txt, missing from pyproject.toml"
    assert dependencies - pi == APT_ON_THE_PI, "in pyproject.toml, missing from requirements/pi.txt"
    assert runtime <= pi, f"the {RUNTIME_EXTRA} extra is what the Pi installs"


def test_the_versions_the_pi_installs_satisfy_pyproject():
    project = pyproject()
    declared = [*project["dependencies"], *project["optional-dependencies"][RUNTIME_EXTRA]]
    pi = requirements_file(REPO / "requirements" / "pi.txt")
    for requirement in map(Requirement, declared):
        if requirement.name.lower() in APT_ON_THE_PI:
            continue
        pinned = pi[requirement.name.lower()]
        lowest = next(s.version for s in pinned.specifier if s.operator in ("==", ">="))
        assert requirement.specifier.contains(lowest) and str(pinned.specifier) in (
            str(requirement.specifier),
            f"=={lowest}",
        ), f"requirements/pi.txt {pinned} vs pyproject.toml {requirement}"
