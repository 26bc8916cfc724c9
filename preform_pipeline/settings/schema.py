"""The settings JSON Schema (``schemas/settings.schema.json``) and checking raw settings
against it."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from preform_pipeline.errors import Problem, SettingsError
from preform_pipeline.logging import REDACTED, SECRET_KEY_PATTERN, redact_url
from preform_pipeline.settings.reading import SourceOf
from preform_pipeline.yamlerrors import format_json_path

if TYPE_CHECKING:
    import jsonschema

__all__ = ["settings_schema", "validate_settings"]

_SCHEMA_RESOURCE: Final = "settings.schema.json"
#: Settings whose value is a URL that may carry a password or token (``store.url``'s login,
#: a webhook's path): a problem shows it by scheme and host only.
_URL_KEYS: Final = frozenset({"url", "webhook_url"})
#: How a problem names a secret's value instead of quoting it.
_NOT_SHOWN: Final = "the value (not shown: it is a secret)"


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
    if not raw:
        # No file and no variable: nothing to check (the schema requires no key), and the
        # check's jsonschema and its referencing stack (~60 ms of CPU) are not imported by
        # the command lines that run on the defaults (``verify``, ``jobs``; ``run`` imports
        # jsonschema all the same, for its recipe).
        return
    import jsonschema  # here, not at the top: see above

    validator = jsonschema.Draft202012Validator(settings_schema())
    problems: list[tuple[str, list[str | int], str]] = []
    for error in validator.iter_errors(raw):
        parts: list[str | int] = list(error.absolute_path)
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
        said = error
        if error.validator == "oneOf" and error.context:
            # "null or a path": the non-null branch's complaint is the useful one.
            said = next((c for c in error.context if c.validator != "type"), error)
        problems.append((source_of(parts), parts, _without_secrets(said)))
    if problems:
        problems.sort(key=lambda p: (p[0], format_json_path(p[1]), p[2]))
        raise SettingsError(
            [Problem(source, None, None, format_json_path(parts), message)
             for source, parts, message in problems],
            [tuple(parts) for _, parts, _ in problems],
            hint="see docs/settings.md for every setting",
        )


def _without_secrets(error: jsonschema.ValidationError) -> str:
    """The error's message without a secret it would quote: a settings file's problems reach
    the console, a service's journal and a shared log. A secret key's value (a password put in
    ``secret_hash``, a ``client_secret``) is not shown; a URL's is shown by scheme and host; an
    object's secret members are redacted."""
    instance, message = error.instance, str(error.message)
    keys = [part for part in error.absolute_path if isinstance(part, str)]
    key = keys[-1] if keys else ""
    if SECRET_KEY_PATTERN.search(key):
        shown = _NOT_SHOWN
    elif key in _URL_KEYS and isinstance(instance, str):
        shown = repr(redact_url(instance))
    elif isinstance(instance, dict):
        shown = repr({k: REDACTED if SECRET_KEY_PATTERN.search(str(k)) else v
                      for k, v in instance.items()})
    else:
        return message
    # jsonschema's messages start with the value as repr() gives it.
    return message.replace(repr(instance), shown, 1)
