"""Reading the official OpenAPI contracts from ``../shared/formlabs-api`` for conformance tests.

The specs are reference data that stays outside the project: tests locate them beside the
checkout and skip, saying so, where they are absent.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = [
    "Contract",
    "SPEC_DIR_ENV",
    "local_api_contract",
    "spec_dir",
    "web_api_contract",
]

#: Environment variable that points the tests at another copy of the specs.
SPEC_DIR_ENV = "PREFORM_PIPELINE_SPEC_DIR"

_REPO_ROOT = Path(__file__).resolve().parent.parent

# Marks which way a schema is read (OpenAPI extension keys are ignored by validators).
_DIRECTION = "x-preform-pipeline-direction"


def spec_dir() -> Path | None:
    """``../shared/formlabs-api`` next to the checkout, or ``$PREFORM_PIPELINE_SPEC_DIR``."""
    override = os.environ.get(SPEC_DIR_ENV)
    candidates = [Path(override)] if override else []
    candidates.append(_REPO_ROOT.parent / "shared" / "formlabs-api")
    for candidate in candidates:
        if (candidate / "local-api-openapi.yaml").is_file():
            return candidate
    return None


class Contract:
    """One OpenAPI document: look up request and response schemas, validate bodies."""

    def __init__(self, document: dict[str, Any], uri: str) -> None:
        self.document = document
        self.uri = uri
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
def _load(name: str) -> Contract | None:
    folder = spec_dir()
    if folder is None:
        return None
    path = folder / name
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Contract(document, path.resolve().as_uri())


def _contract(name: str) -> Contract:
    contract = _load(name)
    if contract is None:
        pytest.skip(
            f"official spec {name} not found beside the checkout (../shared/formlabs-api) "
            f"nor in ${SPEC_DIR_ENV}: conformance cannot be checked here"
        )
    return contract


def local_api_contract() -> Contract:
    return _contract("local-api-openapi.yaml")


def web_api_contract() -> Contract:
    return _contract("web-api-openapi.yaml")
