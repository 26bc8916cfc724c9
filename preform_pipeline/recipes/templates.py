"""Safe templates for output paths, job names and label text: ``{case_id}/{build}.form``.

Templates use the ``str.format`` brace syntax but only its harmless part: a field is a plain
name. Attribute and index access (``{a.__class__}``, ``{a[0]}``), positional fields (``{}``,
``{0}``), conversions (``{a!r}``) and nested or elaborate format specs are refused, so a
template can never reach into Python objects. Values are strings or numbers supplied by the
pipeline and by hot-folder sidecar files.

Output paths are confined twice: the template text itself may not be absolute or climb with
``..``, and every field value is sanitised into a single safe file-name component before it is
inserted (a sidecar saying ``case_id: ../../etc`` yields ``_.._etc``, not a climb). The final
resolved path must stay inside the output root, whatever happens.

Which fields exist, and where:

* run fields, fixed for one run of a recipe: ``recipe``, ``date``, ``time``, ``machine``,
  ``material``;
* build fields: the run fields and ``build`` (the build's name);
* model fields: the build fields, ``stem`` and ``model`` (the model file's stem and name), the
  hot-folder sidecar fields (:data:`HOTFOLDER_SIDECAR_FIELDS`) and the recipe's own ``fields``.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import stat
import string
import unicodedata
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Final, Literal

from preform_pipeline.errors import TemplateError

__all__ = [
    "BUILD_FIELDS",
    "HOTFOLDER_SIDECAR_FIELDS",
    "MODEL_FIELDS",
    "RUN_FIELDS",
    "TEMPLATE_FIELDS_BUILTIN",
    "Scope",
    "TemplateIssue",
    "available_fields",
    "check_path_template",
    "check_template",
    "render_output_path",
    "render_template",
    "resolved_output_path",
    "sanitize_component",
    "template_fields",
]

Scope = Literal["run", "build", "model"]

RUN_FIELDS: Final[frozenset[str]] = frozenset({"recipe", "date", "time", "machine", "material"})
#: ``job``: the default print job name, the build's case ids or else its name (which already
#: starts with the recipe's name, so ``{recipe}-{build}`` would say the recipe twice).
BUILD_FIELDS: Final[frozenset[str]] = RUN_FIELDS | {"build", "job"}
MODEL_FIELDS: Final[frozenset[str]] = BUILD_FIELDS | {"stem", "model"}
TEMPLATE_FIELDS_BUILTIN: Final[frozenset[str]] = MODEL_FIELDS

#: Fields a hot-folder sidecar file (``part.stl`` + ``part.json``/``part.yaml``) may give for a
#: model. A recipe may declare more in its ``fields:`` list.
HOTFOLDER_SIDECAR_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "case_id",
        "patient_ref",
        "customer",
        "order_id",
        "priority",
        "printer",
        "label_text",
        "due_date",
        "operator",
        "units",
    }
)

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Width/alignment for text, zero padding for numbers ({build:03d}); nothing that can nest.
_SIMPLE_SPEC = re.compile(r"(?:[<>^]?[0-9]{1,3}|0?[0-9]{1,3}d|d)\Z")
# Characters Windows refuses in file names; control characters are handled separately.
_UNSAFE_NAME_CHARS = frozenset('<>:"/\\|?*')
#: Those characters to ``_``, for a value of printable ASCII (:func:`sanitize_component`).
_UNSAFE_TO_UNDERSCORE: Final = str.maketrans(dict.fromkeys(_UNSAFE_NAME_CHARS, "_"))
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
#: Longest component a sanitised value may produce (most file systems allow 255 bytes).
MAX_COMPONENT_CHARS: Final = 120


@dataclass(frozen=True)
class TemplateIssue:
    """One thing wrong with a template, found without rendering it."""

    message: str
    suggestion: str | None = None


def _parse(template: str) -> tuple[tuple[str, str | None, str], ...]:
    """``(literal, field, spec)`` triples; raises TemplateError for anything beyond a name."""
    if not isinstance(template, str):
        raise TemplateError(repr(template), "a template must be a string")
    return _parse_text(template)


# A run renders the same few templates for every build and model: parse each once.
@functools.lru_cache(maxsize=256)
def _parse_text(template: str) -> tuple[tuple[str, str | None, str], ...]:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(
            template, f"malformed braces ({exc})", hint="write a literal brace as {{ or }}"
        ) from None
    out: list[tuple[str, str | None, str]] = []
    for literal, name, spec, conversion in parts:
        if name is None:
            out.append((literal, None, ""))
            continue
        if conversion is not None:
            raise TemplateError(
                template, f"conversion '!{conversion}' in {{{name}!{conversion}}} is not allowed"
            )
        if not _FIELD_NAME.match(name):
            shown = "{" + name + "}"
            what = (
                "attribute or index access"
                if any(c in name for c in ".[]")
                else "positional or malformed field"
            )
            raise TemplateError(
                template,
                f"{shown}: {what} is not allowed",
                hint="use a plain field name such as {case_id}",
            )
        if spec and not _SIMPLE_SPEC.match(spec):
            raise TemplateError(
                template,
                f"format spec ':{spec}' in {{{name}:{spec}}} is not allowed",
                hint="only widths and zero padding are allowed, e.g. {build:03d}",
            )
        out.append((literal, name, spec or ""))
    return tuple(out)


def template_fields(template: str) -> set[str]:
    """The field names ``template`` uses; raises TemplateError when it is not a safe template."""
    return {name for _, name, _ in _parse(template) if name is not None}


def available_fields(scope: Scope, extra: Collection[str] = ()) -> frozenset[str]:
    """Fields a template rendered once per run, build or model can use.

    ``extra`` are the recipe's declared ``fields``; like sidecar fields they belong to a model.
    """
    if scope == "run":
        return RUN_FIELDS
    if scope == "build":
        return BUILD_FIELDS
    return MODEL_FIELDS | HOTFOLDER_SIDECAR_FIELDS | frozenset(extra)


def _closest(name: str, candidates: Collection[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def check_template(
    template: str,
    *,
    scope: Scope,
    extra_fields: Collection[str] = (),
    scope_reason: str = "",
) -> Iterator[TemplateIssue]:
    """Every problem with ``template`` used where ``scope`` fields are available.

    ``scope_reason`` finishes the sentence explaining why a model field cannot be filled (e.g.
    "outputs.form is rendered once per build").
    """
    try:
        names = [name for _, name, _ in _parse(template) if name is not None]
    except TemplateError as exc:
        yield TemplateIssue(exc.message.split(": ", 1)[-1] + (f" ({exc.hint})" if exc.hint else ""))
        return
    allowed = available_fields(scope, extra_fields)
    everything = available_fields("model", extra_fields)
    for name in dict.fromkeys(names):
        if name in allowed:
            continue
        if name in everything:
            why = f": {scope_reason}" if scope_reason else ""
            what = "differs from build to build" if name in BUILD_FIELDS else (
                "belongs to one model")
            yield TemplateIssue(f"field {{{name}}} {what} and cannot be filled here{why}")
            continue
        close = _closest(name, allowed)
        known = "" if close else "; known fields: " + ", ".join(sorted(allowed))
        declare = "; declare other sidecar fields in `fields:`" if scope == "model" else ""
        yield TemplateIssue(f"unknown template field {{{name}}}{known}{declare}", close)


def check_path_template(template: str) -> Iterator[TemplateIssue]:
    """Problems with the literal text of a relative output-path template."""
    try:
        parts = _parse(template)
    except TemplateError:
        return  # check_template reports it
    literal = "".join(lit + ("x" if name is not None else "") for lit, name, _ in parts)
    if not literal.strip():
        yield TemplateIssue("an output path template may not be empty")
        return
    if _is_absolute(literal):
        yield TemplateIssue(
            "an output path template must be relative to outputs.root, not absolute"
        )
    if any(part == ".." for part in re.split(r"[\\/]", literal)):
        yield TemplateIssue("an output path template may not climb out of outputs.root with '..'")
    bad = sorted({c for c in literal if c in '<>:"|?*' or unicodedata.category(c) == "Cc"})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        yield TemplateIssue(f"characters not allowed in file names on Windows: {shown}")


def _is_absolute(text: str) -> bool:
    return (
        PurePosixPath(text).is_absolute()
        or PureWindowsPath(text).is_absolute()
        or bool(PureWindowsPath(text).drive)
        or text.startswith(("/", "\\"))
    )


def render_template(template: str, values: Mapping[str, object]) -> str:
    """``template`` with its fields filled from ``values``; a missing field is an error."""
    out: list[str] = []
    for literal, name, spec in _parse(template):
        out.append(literal)
        if name is None:
            continue
        if name not in values:
            close = _closest(name, values.keys())
            raise TemplateError(
                template,
                f"no value for field {{{name}}}",
                hint=f"did you mean {{{close}}}?" if close else "give the field a value",
            )
        try:
            out.append(format(values[name], spec))
        except (ValueError, TypeError) as exc:
            raise TemplateError(template, f"cannot format {{{name}:{spec}}}: {exc}") from None
    return "".join(out)


def sanitize_component(value: object) -> str:
    """``value`` as one safe file-name component on Windows, macOS and Linux.

    Path separators, characters Windows refuses and control characters become ``_``; leading
    and trailing dots and spaces go (so ``..`` cannot climb and Windows keeps the name);
    reserved device names get a ``_`` prefix; long values are cut.
    """
    text = str(value)
    if text.isascii() and text.isprintable():
        # The usual value (a build's name, a date, a step's id): NFC leaves printable ASCII
        # as it is, and none of it is a control or format character, so only the characters
        # Windows refuses change; a look-up per character cost a save a few hundred calls.
        cleaned = text.translate(_UNSAFE_TO_UNDERSCORE)
    else:
        cleaned = "".join(
            "_" if c in _UNSAFE_NAME_CHARS or unicodedata.category(c) in ("Cc", "Cf") else c
            for c in unicodedata.normalize("NFC", text)
        )
    cleaned = cleaned.strip(" .")[:MAX_COMPONENT_CHARS].rstrip(" .")
    if not cleaned:
        return "_"
    if cleaned.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        cleaned = "_" + cleaned
    return cleaned


def render_output_path(template: str, values: Mapping[str, object], root: Path) -> Path:
    """The file ``template`` names below ``root``, with sanitised field values.

    Raises TemplateError when the template is unsafe or names a field without a value, and
    when the path would leave ``root``.
    """
    parts = _rendered_parts(template, values)
    _below(template, root.resolve(), parts)
    return root.joinpath(*parts)


def resolved_output_path(
    template: str, values: Mapping[str, object], resolved_root: Path
) -> Path:
    """``render_output_path(template, values, root).resolve()`` for a root resolved already
    (``resolved_root``): the root is not resolved again, only the rendered parts below it.
    Raises as :func:`render_output_path` does."""
    return _below(template, resolved_root, _rendered_parts(template, values))


def _rendered_parts(template: str, values: Mapping[str, object]) -> list[str]:
    problem = _path_template_problem(template)
    if problem is not None:
        raise TemplateError(template, problem)
    # Only the fields the template names are read: the others keep their keys (for the
    # "did you mean" hint) but are not sanitised for nothing.
    used = template_fields(template)
    safe = {key: sanitize_component(val) if key in used else val for key, val in values.items()}
    rendered = render_template(template, safe)
    parts = [p for p in re.split(r"[\\/]+", rendered) if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise TemplateError(template, f"renders to {rendered!r}, which is not a file below root")
    return parts


def _below(template: str, resolved_root: Path, parts: list[str]) -> Path:
    """The resolved path of ``parts`` below ``resolved_root``; TemplateError outside it."""
    resolved = _resolve_below(resolved_root, parts)
    if not resolved.is_relative_to(resolved_root):
        raise TemplateError(
            template,
            f"renders to {resolved}, outside the output root {resolved_root}",
            hint="output paths must stay inside outputs.root",
        )
    return resolved


@functools.lru_cache(maxsize=256)
def _path_template_problem(template: str) -> str | None:
    """The first of :func:`check_path_template`'s problems (a template's text never changes)."""
    return next((issue.message for issue in check_path_template(template)), None)


def _resolve_below(resolved_root: Path, parts: list[str]) -> Path:
    """``resolved_root.joinpath(*parts).resolve()``, without resolving the root again.

    The root is resolved already, so only the parts below it are looked at: where none is a
    symbolic link the result is the same join ``resolve()`` gives (a part that does not exist
    ends the walk, as it ends ``resolve()``'s); at a link, or off POSIX, the rest is resolved
    whole.
    """
    if os.name != "posix":
        return resolved_root.joinpath(*parts).resolve()
    path = str(resolved_root)
    for i, part in enumerate(parts):
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return Path(path, *parts[i + 1:])
        if stat.S_ISLNK(mode):
            return Path(path, *parts[i + 1:]).resolve()
    return Path(path)
