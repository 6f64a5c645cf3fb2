"""pyproject.toml builds without setuptools deprecation warnings (PEP 639 license expression)."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_license_is_an_spdx_expression_and_setuptools_is_new_enough_for_it() -> None:
    data = tomllib.loads(PYPROJECT.read_text())
    assert data["project"]["license"] == "Apache-2.0"
    (req,) = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    assert req.startswith("setuptools>=") and int(req.split(">=")[1].split(".")[0]) >= 77


def test_setuptools_reads_the_project_table_without_deprecation_warnings() -> None:
    import setuptools  # from the test extra; imported here, not at collection: it patches distutils
    from setuptools.config.pyprojecttoml import apply_configuration

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(setuptools.Distribution(), PYPROJECT)
    assert [str(w.message) for w in caught if "deprecat" in str(w.message).lower()] == []
    assert dist.metadata.license_expression == "Apache-2.0"
