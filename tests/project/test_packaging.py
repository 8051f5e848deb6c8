"""Version pins: ranges in pyproject.toml, the exact tested set in constraints.txt, installed as tested."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    texts = project["dependencies"] + [r for name in ("train", "merge", "eval", "dev") for r in extras[name]]
    return [Requirement(t) for t in texts]


def _constraints() -> dict[str, Version]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = Version(version)
    return out


def test_pyproject_declares_ranges_not_pins():
    for req in _requirements():
        ops = {s.operator for s in req.specifier}
        assert ops == {">=", "<"}, f"{req}: want a tested lower bound and an upper bound"
        lower = next(Version(s.version) for s in req.specifier if s.operator == ">=")
        upper = next(Version(s.version) for s in req.specifier if s.operator == "<")
        assert lower < upper, req


def test_constraints_pin_every_dependency_inside_its_range():
    pins = _constraints()
    for req in _requirements():
        key = canonicalize_name(req.name)
        assert key in pins, f"{req.name} missing from constraints.txt"
        assert req.specifier.contains(pins[key]), f"constraints.txt {req.name}=={pins[key]} outside {req}"
        # the lower bound is what we tested
        lower = next(Version(s.version) for s in req.specifier if s.operator == ">=")
        assert lower == pins[key], f"{req}: lower bound is not the tested {pins[key]}"


def test_this_environment_is_the_constrained_set():
    """The tests run on exactly constraints.txt (else regenerate it: scripts/freeze_constraints.py)."""
    pins = _constraints()
    wrong = {}
    for key, version in pins.items():
        installed = metadata.version(key)
        if Version(installed.split("+")[0]) != version:  # 2.13.0+cpu is 2.13.0
            wrong[key] = (installed, str(version))
    assert wrong == {}


def test_setup_and_ci_install_the_constraints():
    setup = (ROOT / "scripts/setup.sh").read_text()
    assert 'pip install -q -c constraints.txt -e ".[all]"' in setup
    assert "pip install -q -c constraints.txt torch" in setup
    assert "./scripts/setup.sh" in (ROOT / ".ci/run").read_text()
    # torch pinned without a local label: the same line serves the CPU and the CUDA wheel
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().splitlines()
