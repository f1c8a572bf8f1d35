"""The distribution installs one import package, ``council``, and every folder of it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import council

ROOT = Path(__file__).resolve().parents[2]


def _setuptools() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config


def test_every_package_folder_is_listed_for_installation() -> None:
    config = _setuptools()
    found: set[str] = set()
    for name, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *parts)))
    assert found == set(config["packages"])


def test_every_listed_package_has_one_top_level_name() -> None:
    assert {name.split(".")[0] for name in _setuptools()["packages"]} == {"council"}


def test_the_package_says_its_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"]
    assert council.__version__.count(".") == 2
