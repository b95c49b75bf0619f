"""Package discovery (everything else is in pyproject.toml).

Every package under ``sciml/`` is found by itself, so a new subpackage cannot be left out of a
wheel; the top-level ``problems/`` folder ships inside the package as ``sciml._problems``, where
:func:`sciml.problem.problems_dirs` looks for the built-in problem files.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["sciml", "sciml.*"]), "sciml._problems"],
    package_dir={"sciml._problems": "problems"},
)
