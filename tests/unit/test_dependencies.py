"""The locks agree with what asks for them: pyproject.toml, the layer, checkov (docs/dependencies.md)."""

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
HERE = default_environment()


def locked(path: Path) -> dict[str, str]:
    """Package → the version a lock file pins for this machine's platform and Python."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "-")):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(HERE):
            (pinned,) = requirement.specifier
            assert pinned.operator == "==", f"{path.name}: {line} is not an exact pin"
            pins[canonicalize_name(requirement.name)] = pinned.version
    return pins


def wanted(lines: list[str]) -> list[Requirement]:
    requirements = [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [r for r in requirements if r.marker is None or r.marker.evaluate(HERE)]


LOCK = locked(ROOT / "requirements.lock")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize(
    "requirement", wanted(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]), ids=str
)
def test_the_lock_satisfies_pyproject(requirement: Requirement) -> None:
    name = canonicalize_name(requirement.name)
    assert name in LOCK, f"{name} is not in requirements.lock: run `make lock`"
    assert requirement.specifier.contains(LOCK[name], prereleases=True), (
        f"requirements.lock has {name}=={LOCK[name]}, pyproject.toml asks {requirement.specifier}: run `make lock`"
    )


def test_the_layer_ships_the_locked_versions_of_everything_it_needs() -> None:
    layer = locked(ROOT / "lib" / "requirements.txt")
    asked = {canonicalize_name(r.name) for r in wanted((ROOT / "requirements-layer.in").read_text().splitlines())}
    assert asked <= layer.keys(), f"not in lib/requirements.txt: {asked - layer.keys()}: run `make lock`"
    differ = {name: (pin, LOCK.get(name)) for name, pin in layer.items() if LOCK.get(name) != pin}
    assert not differ, f"lib/requirements.txt vs requirements.lock: {differ}: run `make lock`"


def test_checkovs_lock_holds_the_asked_version() -> None:
    (asked,) = wanted((ROOT / "requirements-checkov.in").read_text().splitlines())
    assert asked.specifier.contains(locked(ROOT / "requirements-checkov.lock")["checkov"])


@pytest.mark.parametrize("package", ["moto", "aws-lambda-powertools", "boto3", "botocore"])
def test_the_suite_runs_with_the_locked_version(package: str) -> None:
    """The libraries whose behaviour the runtime depends on most are the ones the lock names."""
    assert version(package) == LOCK[package], "the virtualenv is not the lock's: `make` reinstalls it"
