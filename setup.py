"""Package discovery that pyproject.toml alone cannot express.

The JSON Schemas live in the top-level ``schemas/`` folder (where users and editors find them)
and are installed as the ``preform_pipeline.schemas`` package, so the installed tool reads them
with ``importlib.resources``. Metadata is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["preform_pipeline", "preform_pipeline.*"]),
              "preform_pipeline.schemas"],
    package_dir={"preform_pipeline.schemas": "schemas"},
)
