"""Reading the official OpenAPI contracts from ``../shared/formlabs-api`` for conformance tests.

The specs are reference data that stays outside the project: tests locate them beside the
checkout (or in ``$PREFORM_PIPELINE_SPEC_DIR``, which then is the only place looked at). Where
they are absent, a contract test fails naming the folder in CI (``CI`` set to a true value) or
with ``PREFORM_PIPELINE_REQUIRE_SPECS=1``; elsewhere it skips, and ``tests/conftest.py`` sums
those skips up in one line of the terminal summary.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# The readers and validators are imported where a contract is read: the conftest imports
# this module for its names alone, in every pytest process (the suite's nested runs too),
# and openapi_schema_validator was most of that import (~0.1 s of CPU).
if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

__all__ = [
    "CONTRACT_SKIP_REASON",
    "REQUIRE_SPECS_ENV",
    "SPEC_DIR_ENV",
    "Contract",
    "expected_spec_dir",
    "local_api_contract",
    "spec_dir",
    "specs_required",
    "web_api_contract",
]

#: Environment variable that points the tests at another copy of the specs.
SPEC_DIR_ENV = "PREFORM_PIPELINE_SPEC_DIR"
#: Environment variable that turns a missing spec folder into a failure (as CI does).
REQUIRE_SPECS_ENV = "PREFORM_PIPELINE_REQUIRE_SPECS"
#: How every contract skip's reason starts (tests/conftest.py counts skips by it).
CONTRACT_SKIP_REASON = "official specs not found"

_REPO_ROOT = Path(__file__).resolve().parent.parent
_TRUE = frozenset({"1", "true", "yes", "on"})

# Marks which way a schema is read (OpenAPI extension keys are ignored by validators).
_DIRECTION = "x-preform-pipeline-direction"


def expected_spec_dir() -> Path:
    """Where the specs must be: ``$PREFORM_PIPELINE_SPEC_DIR``, else ``../shared/formlabs-api``.

    An override that points nowhere is not silently replaced by the default folder: whoever
    set it meant that copy.
    """
    override = os.environ.get(SPEC_DIR_ENV)
    if override:
        return Path(override).resolve()
    return (_REPO_ROOT.parent / "shared" / "formlabs-api").resolve()


def spec_dir() -> Path | None:
    """:func:`expected_spec_dir` when it holds the specs, else None."""
    folder = expected_spec_dir()
    return folder if (folder / "local-api-openapi.yaml").is_file() else None


def specs_required() -> bool:
    """True in CI (``CI`` set to a true value) or with ``PREFORM_PIPELINE_REQUIRE_SPECS=1``."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE for name in ("CI", REQUIRE_SPECS_ENV)
    )


class Contract:
    """One OpenAPI document: look up request and response schemas, validate bodies."""

    def __init__(self, document: dict[str, Any], uri: str) -> None:
        self.document = document
        self.uri = uri
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        resource = Resource.from_contents(document, default_specification=DRAFT4)
        self._registry: Registry[Any] = Registry().with_resource(uri, resource)

    def operation(self, path: str, method: str) -> dict[str, Any]:
        try:
            op: dict[str, Any] = self.document["paths"][path][method.lower()]
        except KeyError:
            raise KeyError(f"the contract has no {method.upper()} {path}") from None
        return op

    def request_schema(
        self, path: str, method: str, media_type: str = "application/json"
    ) -> dict[str, Any] | None:
        body = self.operation(path, method).get("requestBody")
        if body is None:
            return None
        schema: dict[str, Any] = body["content"][media_type]["schema"]
        return {**schema, _DIRECTION: "request"}

    def response_schema(self, path: str, method: str, status: int) -> dict[str, Any] | None:
        responses = self.operation(path, method)["responses"]
        entry = responses.get(str(status)) or responses.get("default")
        if entry is None:
            raise KeyError(f"the contract documents no {status} answer for {method.upper()} {path}")
        content = entry.get("content")
        if not content:
            return None
        schema: dict[str, Any] = content["application/json"]["schema"]
        return {**schema, _DIRECTION: "response"}

    def component(self, name: str) -> dict[str, Any]:
        schema: dict[str, Any] = self.document["components"]["schemas"][name]
        return schema

    def errors(self, instance: Any, schema: dict[str, Any]) -> list[ValidationError]:
        """Every way ``instance`` breaks ``schema`` (empty when it conforms).

        Response bodies are read-direction: ``readOnly`` properties are present and required
        there (most of the Web API's required fields are readOnly; the plain OAS 3.0 validator
        would skip them). Request bodies are write-direction. A schema from
        :meth:`response_schema` or :meth:`request_schema` carries its direction; any other
        schema (a component) is checked as a response.
        """
        from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

        direction = schema.get(_DIRECTION, "response")
        bare = {k: v for k, v in schema.items() if k != _DIRECTION}
        wrapped = {**bare, "$id": self.uri + "#inline"} if "$ref" not in bare else bare
        validator_class = OAS30WriteValidator if direction == "request" else OAS30ReadValidator
        validator = validator_class(
            {"components": self.document.get("components", {}), **wrapped},
            registry=self._registry,
        )
        return sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))

    def assert_valid(self, instance: Any, schema: dict[str, Any] | None, what: str) -> None:
        if schema is None:
            return
        found = self.errors(instance, schema)
        if found:
            lines = "\n".join(f"  {e.json_path}: {e.message}" for e in found[:10])
            raise AssertionError(f"{what} does not conform to the contract:\n{lines}")


@functools.cache
def _load(path: Path) -> Contract:
    import yaml

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Contract(document, path.as_uri())


def _contract(name: str) -> Contract:
    folder = expected_spec_dir()
    path = folder / name
    if path.is_file():
        return _load(path)
    if specs_required():
        pytest.fail(
            f"{name} is missing from the spec folder {folder}: the contract tests cannot run. "
            f"Put the official specs there or point ${SPEC_DIR_ENV} at them (required in CI "
            f"and with {REQUIRE_SPECS_ENV}=1)",
            pytrace=False,
        )
    pytest.skip(f"{CONTRACT_SKIP_REASON} in {folder} ({name}): conformance is not checked here")


def local_api_contract() -> Contract:
    return _contract("local-api-openapi.yaml")


def web_api_contract() -> Contract:
    return _contract("web-api-openapi.yaml")
