"""The recipe JSON Schema: loading it once, and turning its errors into positioned Problems.

The schema ships inside the package (``preform_pipeline.schemas``, the repository's top-level
``schemas/`` folder). Validation uses :class:`jsonschema.Draft202012Validator`, built once per
process. Each :class:`jsonschema.ValidationError` becomes a :class:`~preform_pipeline.errors.
Problem` at the best position the YAML offers:

* an unknown key is reported at the key, with the closest allowed key as "did you mean";
* a wrong enum or constant value gets the closest allowed value (case-insensitive first);
* a missing required key points at its parent's key (``scene:``);
* ``oneOf``/``anyOf`` failures report the most relevant branch error
  (:func:`jsonschema.exceptions.best_match`), unless the schema words the failure itself.

A schema node may carry ``x-messages``: ``{keyword: message}``, which replaces the library's
message for failures of that keyword there (the schema knows the user's words best).
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from preform_pipeline.errors import Problem
from preform_pipeline.recipes.loader import Document, JsonPath

__all__ = [
    "SCHEMA_PACKAGE",
    "SCHEMA_RESOURCE",
    "closest",
    "recipe_schema",
    "recipe_validator",
    "schema_problems",
]

SCHEMA_PACKAGE: Final = "preform_pipeline.schemas"
SCHEMA_RESOURCE: Final = "recipe.schema.json"
_MESSAGES_KEY: Final = "x-messages"


@functools.cache
def recipe_schema() -> Mapping[str, Any]:
    """The recipe JSON Schema shipped with the package."""
    text = resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def recipe_validator() -> Draft202012Validator:
    """The compiled validator, built once per process."""
    return Draft202012Validator(recipe_schema())


def closest(value: object, choices: Iterable[object]) -> str | None:
    """The allowed string closest to ``value`` (an exact case-insensitive match first)."""
    if not isinstance(value, str):
        return None
    by_folded: dict[str, str] = {}
    for choice in choices:
        if isinstance(choice, str):
            by_folded.setdefault(choice.casefold(), choice)
    # Case is the commonest slip (dental for DENTAL), so compare case-folded.
    close = difflib.get_close_matches(value.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[close[0]] if close else None


def _custom_message(error: ValidationError) -> str | None:
    schema = error.schema
    if isinstance(schema, Mapping):
        messages = schema.get(_MESSAGES_KEY)
        if isinstance(messages, Mapping):
            text = messages.get(str(error.validator))
            if isinstance(text, str):
                return text
    return None


def _path(error: ValidationError) -> JsonPath:
    return tuple(error.absolute_path)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fitting_branch(error: ValidationError) -> list[ValidationError] | None:
    """The errors of the one branch of a failed ``oneOf`` whose shape the value has (its
    keys are that branch's; only a value inside is wrong), else None. A matrix with one
    element of text is a wrong element of a matrix, not "an orientation is ..."."""
    branches: dict[object, list[ValidationError]] = {}
    for inner in error.context or ():
        branches.setdefault(inner.relative_schema_path[0], []).append(inner)
    fitting = [errors for errors in branches.values()
               if all(e.relative_path for e in errors)]
    return fitting[0] if len(fitting) == 1 else None


def _empty_key_above(mapping: Mapping[Any, Any], key: object) -> str | None:
    """The key written just before ``key`` when it has no value (``auto_layout:`` alone on
    its line), else None: a key indented no further than the one above it is its sibling,
    not its option (session 44's trial: ``mode: DENTAL`` under ``- auto_layout:`` at the
    step's column was said only as an unknown key of the step)."""
    keys = list(mapping)
    at = keys.index(key)
    above = keys[at - 1] if at else None
    if not isinstance(above, str) or mapping[above] is not None:
        return None
    return above


def _convert(error: ValidationError, doc: Document) -> Iterator[Problem]:
    path = _path(error)
    custom = _custom_message(error)
    validator = str(error.validator)
    if validator == "additionalProperties" and isinstance(error.instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = list(schema.get("properties", {}))
        for key in error.instance:
            if key in allowed:
                continue
            suggestion = closest(key, allowed)
            hint = "" if suggestion else "; allowed here: " + ", ".join(allowed)
            above = _empty_key_above(error.instance, key)
            if above is not None:
                hint = (f"; the key above it, {above!r}, has no value: if {key!r} is one of its "
                        f"options, indent it further than {above!r}{hint}")
            yield doc.problem((*path, key), f"unknown key {key!r}{hint}", suggestion, key=True)
        return
    # A rule's own wording ("an orientation is ...") would hide which element is wrong.
    fitting = _fitting_branch(error) if custom is not None else None
    if fitting:
        for inner in fitting:
            yield from _convert(inner, doc)
        return
    if custom is not None:
        yield doc.problem(path, custom)
        return
    if validator in ("oneOf", "anyOf") and error.context:
        yield from _convert(best_match(error.context), doc)
        return
    if validator == "required" and isinstance(error.validator_value, list):
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        for key in missing:
            yield doc.problem((*path, key), f"missing required key {key!r}")
        return
    if validator == "enum":
        choices = list(error.validator_value)
        shown = ", ".join(str(c) for c in choices)
        suggestion = closest(error.instance, choices)
        yield doc.problem(path, f"{_short(error.instance)} is not one of: {shown}", suggestion)
        return
    if validator == "const":
        yield doc.problem(
            path,
            f"{_short(error.instance)} is not allowed here; use {error.validator_value!r}",
            closest(error.instance, [error.validator_value]),
        )
        return
    if validator == "type":
        wanted = error.validator_value
        names = " or ".join(wanted) if isinstance(wanted, list) else str(wanted)
        yield doc.problem(path, f"{_short(error.instance)} is not of type {names}")
        return
    yield doc.problem(path, error.message)


def schema_problems(data: Any, doc: Document) -> list[Problem]:
    """Every schema violation of ``data`` (the merged recipe) as a positioned Problem."""
    errors = list(recipe_validator().iter_errors(data))
    # A misspelt step kind also fails the "exactly one kind" rule of its step, and a value
    # of the wrong type fails every rule about its keys; the unknown key or the type says it
    # better, so the second message is dropped.
    explained = {_path(e) for e in errors if e.validator in ("additionalProperties", "type")}
    problems: list[Problem] = []
    for error in errors:
        if error.validator == "oneOf" and _path(error) in explained:
            continue
        problems.extend(_convert(error, doc))
    return problems
