"""The settings JSON Schema (``schemas/settings.schema.json``) and checking raw settings
against it."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any, Final

import jsonschema

from preform_pipeline.errors import Problem, SettingsError
from preform_pipeline.settings.reading import SourceOf
from preform_pipeline.yamlerrors import format_json_path

__all__ = ["settings_schema", "validate_settings"]

_SCHEMA_RESOURCE: Final = "settings.schema.json"


@cache
def settings_schema() -> dict[str, Any]:
    """The settings JSON Schema (draft 2020-12), as shipped with the package."""
    text = resources.files("preform_pipeline.schemas").joinpath(_SCHEMA_RESOURCE).read_text(
        encoding="utf-8"
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_settings(raw: dict[str, Any], source_of: SourceOf) -> None:
    """Check the raw settings against the schema; SettingsError lists every problem, each with
    its source and key path, and an unknown key with the closest known one."""
    validator = jsonschema.Draft202012Validator(settings_schema())
    problems: list[tuple[str, list[str | int], str]] = []
    for error in validator.iter_errors(raw):
        parts: list[str | int] = list(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = sorted(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed), key=str):
                close = difflib.get_close_matches(str(key), allowed, n=1)
                text = (
                    f"unknown key (did you mean {close[0]!r}?)"
                    if close
                    else f"unknown key; known keys: {', '.join(allowed)}"
                )
                problems.append((source_of(parts), [*parts, str(key)], text))
            continue
        if error.validator == "oneOf" and error.context:
            # "null or a path": the non-null branch's complaint is the useful one.
            message = next(
                (c.message for c in error.context if c.validator != "type"), error.message
            )
        problems.append((source_of(parts), parts, message))
    if problems:
        problems.sort(key=lambda p: (p[0], format_json_path(p[1]), p[2]))
        raise SettingsError(
            [Problem(source, None, None, format_json_path(parts), message)
             for source, parts, message in problems],
            [tuple(parts) for _, parts, _ in problems],
            hint="see docs/settings.md for every setting",
        )
