"""Reading a settings file: bounded in size, YAML errors with their line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from preform_pipeline.errors import ConfigError, Problem, SettingsError
from preform_pipeline.settings.environment import SETTINGS_ENV
from preform_pipeline.textfiles import SAVE_AS_UTF8, not_utf8, read_small_text
from preform_pipeline.yamlerrors import is_bad_value, safe_load, yaml_problem

__all__ = ["MAX_SETTINGS_FILE_BYTES", "MISSING_FILE_HINT", "read_settings_file"]

#: A settings file is a page of YAML; a larger one is the wrong file.
MAX_SETTINGS_FILE_BYTES: Final = 1024 * 1024


#: What to do about a settings file that is not there, when it was named on the command line.
MISSING_FILE_HINT: Final = "check the path; a relative one starts in the current folder"


def read_settings_file(path: Path, *, named_by_env: bool = False) -> dict[str, Any]:
    """The file's top-level mapping ({} for an empty file); ConfigError or SettingsError with
    the line and column of a YAML mistake. ``named_by_env``: the path came from
    ``PREFORM_PIPELINE_SETTINGS``, so a missing file's hint names that variable."""
    try:
        if path.is_dir():
            raise ConfigError("is a folder, not a settings file", source=str(path))
        if path.stat().st_size > MAX_SETTINGS_FILE_BYTES:
            raise ConfigError(f"is over {MAX_SETTINGS_FILE_BYTES} bytes; a settings file is a "
                              "page of YAML", source=str(path))
        text = read_small_text(path, max_bytes=MAX_SETTINGS_FILE_BYTES)
    except FileNotFoundError:
        raise ConfigError(
            "settings file not found",
            source=str(path),
            # Only a path from the variable can be dropped to run with defaults: a path on
            # the command line was asked for (and `watch` needs one).
            hint=(f"create it, or unset {SETTINGS_ENV} to run with defaults" if named_by_env
                  else MISSING_FILE_HINT),
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read settings file: {exc.strerror or exc}", source=str(path),
                          hint="check the path and its permissions") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(not_utf8(exc), source=str(path), hint=SAVE_AS_UTF8) from None
    try:
        data = safe_load(text, finite_in="settings file")
    except yaml.YAMLError as exc:
        raise SettingsError(
            [yaml_problem(exc, text, str(path))],
            # The message says what the value could not be; the syntax itself was fine.
            hint=("correct the value there; docs/settings.md shows what each setting takes"
                  if is_bad_value(exc) else
                  "fix the YAML syntax there; docs/settings.md shows the format"),
        ) from None
    except RecursionError:  # the pure-Python parser recurses per nesting level
        raise SettingsError(
            [Problem(str(path), None, None, "$", "YAML nests too deeply to be settings")],
            hint="settings nest a few levels at most; see docs/settings.md",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"$: expected a mapping of sections, got {type(data).__name__}",
            source=str(path),
            hint="start the file with a section such as `servers:`",
        )
    if "steps" in data:
        # No settings section is called steps; a recipe always has them. Said as such, not
        # as one "unknown key" per recipe section.
        raise ConfigError(
            "has `steps:`: this is a recipe, not a settings file", source=str(path),
            hint="name a settings file here; its hotfolders: inboxes name their recipes "
            "(docs/settings.md); `preform-pipeline validate RECIPE` checks a recipe",
        )
    return data
