"""Sidecar files: values that come with a dropped model (case id, priority, printer, label...).

``part.stl`` takes its values from ``part.json``, ``part.yaml`` or ``part.yml`` beside it. A
dropped case folder ``C-1042/`` takes values for all its files from ``C-1042.json`` (or
``.yaml``) beside the folder or inside it; a file's own sidecar wins over the folder's.

```yaml
case_id: C-1042
priority: 5            # higher first; default 0
printer: Form4-Lab2    # where the case prints: a printer, [A, B], auto, or a queue id
label_text: "C-1042 L"
due_date: 2024-06-01
```

Known names: :data:`~preform_pipeline.recipes.templates.HOTFOLDER_SIDECAR_FIELDS` plus the
names the recipe lists under ``fields:``. A sidecar that cannot be read, is not a mapping,
names an unknown field or gives a value of the wrong type (``units`` that are not
millimetres or inches among them) raises
:class:`~preform_pipeline.errors.SidecarError`; the daemon then rejects the whole case to
``failed/`` with that reason, since printing it without its values (the wrong label, the
wrong printer) would be worse than not printing it.
"""

from __future__ import annotations

import difflib
import errno
import json
import re
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from preform_pipeline.errors import Problem, SidecarError
from preform_pipeline.geometry.units import STATED_UNITS_HINT, parse_units
from preform_pipeline.hotfolder.stability import SIDECAR_SUFFIXES
from preform_pipeline.recipes.loader import YamlNode, parse_yaml
from preform_pipeline.recipes.templates import HOTFOLDER_SIDECAR_FIELDS
from preform_pipeline.textfiles import SAVE_AS_UTF8, not_utf8, read_small_text
from preform_pipeline.yamlerrors import (
    format_json_path,
    is_bad_value,
    safe_load,
    shape_problem,
    yaml_problem,
)

__all__ = [
    "MAX_SIDECAR_BYTES",
    "PRIORITY_RANGE",
    "SIDECAR_SUFFIX_ORDER",
    "SidecarValues",
    "find_folder_sidecar",
    "find_sidecar",
    "folder_values",
    "is_case_folder",
    "merge_values",
    "model_values",
    "named_cases",
    "read_sidecar",
]

#: Looked for in this order; two sidecars for one model are an error (which one is meant?).
SIDECAR_SUFFIX_ORDER: Final = (".json", ".yaml", ".yml")
#: A sidecar holds a handful of values; anything larger is not one (and is not read whole).
MAX_SIDECAR_BYTES: Final = 256 * 1024
#: Priorities outside this range are almost certainly typos (a date, an order number).
PRIORITY_RANGE: Final = (-1000, 1000)


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class SidecarValues:
    """What sidecars say about one model: ``fields`` are template values (all text)."""

    case_id: str | None = None
    priority: int | None = None
    fields: Mapping[str, str] = field(default_factory=_empty)
    sources: tuple[Path, ...] = ()


def _candidates(folder: Path, stem: str) -> list[Path]:
    return [folder / f"{stem}{suffix}" for suffix in SIDECAR_SUFFIX_ORDER]


def _single(found: list[Path], what: str) -> Path | None:
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise SidecarError(
            found[0].parent,
            f"{what} has {len(found)} sidecars ({names}); which one is meant is unclear",
            hint="keep one sidecar per model or case",
        )
    return found[0] if found else None


def _is_sidecar_file(path: Path) -> bool:
    """Whether the sidecar name ``path`` names a file. A name longer than a file system takes
    names none: a model named with 251 bytes has no room for ``.yaml`` beside it, and
    ``is_file`` raises for it (ENAMETOOLONG) where it answers False for a missing one."""
    try:
        return path.is_file()
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return False
        raise


def find_sidecar(model: Path) -> Path | None:
    """The sidecar beside ``model`` (same stem), or None; SidecarError if there are several."""
    found = [p for p in _candidates(model.parent, model.stem) if _is_sidecar_file(p)]
    return _single(found, model.name)


def find_folder_sidecar(folder: Path) -> Path | None:
    """The sidecar of a case folder: ``<folder>.json`` beside it or inside it, or None."""
    found = [
        p
        for p in (*_candidates(folder.parent, folder.name), *_candidates(folder, folder.name))
        if _is_sidecar_file(p)
    ]
    return _single(found, f"case folder {folder.name}")


def is_case_folder(folder: Path) -> bool:
    """Whether a folder named on its own (``run recipe.yaml C-1042/``) is one case rather than
    a folder of files: a case's sidecar marks it (:func:`find_folder_sidecar`; two of them
    too, so that reading them says which one is meant is unclear). In an inbox every dropped
    folder is a case; a folder named on the command line may be an inbox, so it needs the mark.
    """
    try:
        return find_folder_sidecar(folder) is not None
    except SidecarError:
        return True
    except OSError:  # a folder that cannot be looked into: the walk of it says so
        return False


def named_cases(paths: Iterable[Path | str]) -> list[Path]:
    """The folders among ``paths`` (named on the command line) that are each one case
    (:func:`is_case_folder`); the others are inboxes, whose loose files have no case id."""
    return [p for p in map(Path, paths) if p.is_dir() and is_case_folder(p)]


def _text(value: Any, key: str, path: Path) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (Mapping, list, tuple)):
        kind = "null" if value is None else type(value).__name__
        raise SidecarError(
            path,
            f"{key}: expected text or a number, got {kind}",
            hint=f"write {key} as a single value, e.g. {key}: ABC-123",
        )
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if "\0" in text:
        # A SQLite store took it and a PostgreSQL store refused it when the job was made:
        # the case fails alone, the same on either store.
        raise SidecarError(path, f"{key}: holds a NUL character, which no text may hold",
                           hint=f"write {key} again without it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # JSON's "\ud800" escape alone: half of a character, which neither store can
        # write (the daemon ended on it with exit 70).
        raise SidecarError(
            path, f"{key}: holds a lone surrogate escape (such as \\ud800, half of a "
            "character), which is no text", hint=f"write {key} again without it") from None
    return text


def _priority(value: Any, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            value = int(value.strip())
        else:
            raise SidecarError(
                path,
                f"priority: expected a whole number, got {value!r}",
                hint="priority: 0 is normal; higher numbers are prepared first",
            )
    low, high = PRIORITY_RANGE
    if not low <= value <= high:
        raise SidecarError(
            path, f"priority: {value} is outside {low}..{high}", hint="use a small number"
        )
    return int(value)


def _load(path: Path) -> tuple[Any, str]:
    """The sidecar's data, and its text (to place a later problem at its line and column)."""
    try:
        size = path.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            raise SidecarError(
                path,
                f"is {size} bytes; a sidecar holds a few values (at most {MAX_SIDECAR_BYTES})",
                hint="is this really the model's sidecar?",
            )
        text = read_small_text(path, max_bytes=MAX_SIDECAR_BYTES, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SidecarError(path, f"is {not_utf8(exc)}", hint=SAVE_AS_UTF8) from None
    except OSError as exc:
        raise SidecarError(path, f"cannot be read: {exc.strerror or exc}",
                           hint="check its permissions, or write it again") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text), text
        except RecursionError:  # both decoders recurse per nesting level
            raise SidecarError(path, "nests too deeply for a sidecar",
                               hint="a sidecar is a flat list of values") from None
        except json.JSONDecodeError as exc:
            # Placed as a YAML sidecar's syntax error is (yaml_problem), file:line:col.
            raise SidecarError(
                path, f"$: JSON syntax error: {exc.msg}", line=exc.lineno, column=exc.colno,
                hint="fix the JSON there, then drop the case again",
            ) from None
        except ValueError:  # a number of more digits than Python converts
            raise SidecarError(
                path, f"not valid JSON: a number has over {sys.get_int_max_str_digits()} digits",
                hint="fix the JSON, then drop the case again",
            ) from None
    try:
        return safe_load(text), text
    except RecursionError:
        raise SidecarError(path, "nests too deeply for a sidecar",
                           hint="a sidecar is a flat list of values") from None
    except yaml.YAMLError as exc:
        # Said as a recipe's or a settings file's mistake is: file:line:col: $: message.
        problem = yaml_problem(exc, text, str(path))
        if shape_problem(exc) is not None:  # a key twice, an alias bomb
            raise _shape_error(path, problem) from None
        # As a settings file's: a value that cannot be built was written in good YAML.
        fix = "correct the value there" if is_bad_value(exc) else "fix the YAML there"
        raise _problem_error(path, problem, hint=f"{fix}, then drop the case again") from None


def read_sidecar(path: Path, *, extra_fields: Collection[str] = ()) -> SidecarValues:
    """Read and check one sidecar; ``extra_fields`` are the recipe's own field names.

    Raises SidecarError naming the file, the key and what is wrong.
    """
    if path.suffix.lower() not in SIDECAR_SUFFIXES:
        raise SidecarError(path, "is not a .json, .yaml or .yml file",
                           hint="name it after the model, ending in .json, .yaml or .yml")
    data, source = _load(path)
    if data is None:
        return SidecarValues(sources=(path,))
    if not isinstance(data, Mapping):
        raise SidecarError(
            path,
            f"expected a mapping of field names to values, got {type(data).__name__}",
            hint="write one `name: value` per line (YAML) or a JSON object",
        )
    # The loader's reading (JSON reads as YAML too) places every problem below.
    root, problems = parse_yaml(_placeable(source), str(path), kind="sidecar")
    duplicate = _first_duplicate(problems, path)
    if duplicate is not None:
        raise duplicate
    known = sorted(HOTFOLDER_SIDECAR_FIELDS | set(extra_fields))
    case_id: str | None = None
    priority: int | None = None
    values: dict[str, str] = {}
    for raw_key, value in data.items():
        key = str(raw_key)
        try:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else "add it to the recipe's `fields:` list to use it in templates"
                )
                raise SidecarError(
                    path, f"unknown field {key!r}; known fields: {', '.join(known)}", hint=hint
                )
            if key == "priority":
                priority = _priority(value, path)
                values[key] = str(priority)
                continue
            if key == "printer" and isinstance(value, (list, tuple)) and value:
                # Any of several printers: one target, as a recipe writes a list.
                values[key] = ",".join(_text(v, key, path).strip() for v in value)
                continue
            text = _text(value, key, path)
            if key == "units" and parse_units(text) is None:
                # Judged here with the sidecar's other values, not as each model is read:
                # the case goes whole, and the note names the sidecar at its line (review
                # rv47-dental: read per model, `units: cm` failed a case's STL files one by
                # one, with "the sidecar says" naming no sidecar).
                raise SidecarError(path, f"units: expected MILLIMETERS or INCHES, got {text!r}",
                                   hint=STATED_UNITS_HINT)
            if key == "case_id":
                if not text.strip():
                    raise SidecarError(path, "case_id: is empty", hint="give the case a name")
                case_id = text.strip()
                text = case_id
            values[key] = text
        except SidecarError as exc:
            raise _placed(exc, root, key, known=key in known) from None
    return SidecarValues(
        case_id=case_id,
        priority=priority,
        fields=MappingProxyType(values),
        sources=(path,),
    )


#: The escape of half a character: ``\ud800`` (JSON, YAML) or ``\U0000d800`` (YAML). The
#: values' reading takes it (JSON joins a pair into one character); the loader's reading,
#: which only places problems, refuses it, and a lone one's refusal had no line and column.
_SURROGATE_ESCAPE: Final = re.compile(r"\\(?:u|U0000)[dD][89a-fA-F][0-9a-fA-F]{2}")


def _placeable(source: str) -> str:
    """``source`` with each surrogate escape written as an escape of a plain character of
    the same length: the loader's reading then gives every key and value its place, which
    is all it is read for (the values come from :func:`_load`)."""
    return _SURROGATE_ESCAPE.sub(lambda m: m.group(0)[:-4] + "0041", source)


def _first_duplicate(problems: Sequence[Problem], path: Path) -> SidecarError | None:
    """A key given twice, at its second place; None when every key is given once.

    Both the JSON and the YAML reader keep the last of two equal keys without a word, so a
    sidecar saying ``priority`` twice would print with one of them silently dropped; the
    recipe loader's reading (``problems``) says where, as it does for recipes. Its other
    problems are not the sidecar's: JSON that PyYAML cannot read is still good JSON.
    """
    for problem in problems:
        if problem.message.startswith("duplicate key"):
            return _shape_error(path, problem)
    return None


def _shape_error(path: Path, problem: Problem) -> SidecarError:
    """A sidecar refused for its shape (a key given twice, an alias bomb), at its place."""
    hint = ("keep the one you mean and remove the other, then drop the case again"
            if problem.message.startswith("duplicate key") else
            "write each value out once, then drop the case again")
    return _problem_error(path, problem, hint=hint)


def _problem_error(path: Path, problem: Problem, *, hint: str) -> SidecarError:
    """``problem`` (of the sidecar ``path``) as the error a sidecar raises, shown as the
    problem itself is: ``path:line:col: $.key: message``."""
    return SidecarError(path, f"{problem.json_path}: {problem.message}", hint=hint,
                        line=problem.line, column=problem.column)


def _placed(exc: SidecarError, root: YamlNode | None, key: str, *, known: bool) -> SidecarError:
    """``exc`` at the line and column of ``key`` in the sidecar's reading ``root`` (an unknown
    field) or of its value (a bad value), named by its path as recipe errors name theirs
    (``$.priority``); without a place where the reading failed."""
    node = root.child(key) if root is not None else None
    # As a recipe's: a list or mapping is shown at its key, not at its first entry.
    at_value = known and node is not None and node.kind == "scalar"
    spot = None if node is None else (node.pos if at_value else node.key_pos)
    reason = exc.reason.removeprefix(f"{key}: ")
    return SidecarError(
        exc.path, f"{format_json_path((key,))}: {reason}", hint=exc.hint,
        line=spot.line if spot is not None else None,
        column=spot.column if spot is not None else None,
    )


def merge_values(base: SidecarValues, override: SidecarValues) -> SidecarValues:
    """``override``'s values win (a file's own sidecar over its case folder's)."""
    return SidecarValues(
        case_id=override.case_id if override.case_id is not None else base.case_id,
        priority=override.priority if override.priority is not None else base.priority,
        fields=MappingProxyType({**base.fields, **override.fields}),
        sources=(*base.sources, *override.sources),
    )


def folder_values(folder: Path, *, extra_fields: Collection[str] = ()) -> SidecarValues:
    """What a case folder gives every file below it, subfolders too: its sidecar's values
    (:func:`find_folder_sidecar`), with the folder's name as the case id unless the sidecar
    gives one. The hot folder's rule for a dropped folder, and ``run``'s for a case folder
    it is given (SidecarError when the sidecar cannot be used)."""
    sidecar = find_folder_sidecar(folder)
    values = read_sidecar(sidecar, extra_fields=extra_fields) if sidecar else SidecarValues()
    return values if values.case_id is not None else replace(values, case_id=folder.name)


def model_values(
    model: Path, base: SidecarValues, *, extra_fields: Collection[str] = ()
) -> SidecarValues:
    """``base`` (the :func:`folder_values` of the model's case folder, or nothing for a file
    on its own) with the model's own sidecar's values over it: a file's own sidecar wins.
    A case folder's sidecar inside it (``C-1042/C-1042.json`` beside ``C-1042/C-1042.stl``)
    is read once, as the folder's."""
    own = find_sidecar(model)
    if own is None or own in base.sources:
        return base
    return merge_values(base, read_sidecar(own, extra_fields=extra_fields))
