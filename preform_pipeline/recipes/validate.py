"""The entry points: validate a recipe file, or load it as a :class:`Recipe`.

Validation runs in three layers and reports everything it finds at once: reading the YAML
(syntax, duplicate keys, ``extends``), the JSON Schema, then the semantic checks against the
catalogue of machines and materials. Only a recipe without problems becomes a
:class:`~preform_pipeline.recipes.model.Recipe`.

The catalogue is the shipped :data:`~preform_pipeline.catalogue.DEFAULT_CATALOGUE` unless the
caller passes another one, typically :func:`catalogue_from_server`, which asks a running
PreFormServer (or simulator) for ``/list-materials/`` and falls back to the shipped catalogue,
saying so in its ``source``, when the server cannot be reached.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from preform_pipeline.catalogue import ADAPTIVE, DEFAULT_CATALOGUE, Catalogue
from preform_pipeline.errors import Problem, RecipeError
from preform_pipeline.logging import get_logger, hide_secrets
from preform_pipeline.recipes.defaults import DEFAULT_SERVER_TIMEOUT_S
from preform_pipeline.recipes.loader import Document, load_document
from preform_pipeline.recipes.model import (
    DEFAULT_JOB_NAME,
    DEFAULT_OUTPUTS,
    SUPPORT_FINDINGS,
    VALIDATION_FINDINGS,
    BatchingSpec,
    ImportSpec,
    OutputSpec,
    Recipe,
    SceneSpec,
    Step,
    frozen_mapping,
)
from preform_pipeline.recipes.printers import KnownPrinters, check_printer_names
from preform_pipeline.recipes.report import ValidationReport
from preform_pipeline.recipes.schema import schema_problems
from preform_pipeline.recipes.semantic import (
    Context,
    RawStep,
    make_context,
    semantic_problems,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ValidationReport",
    "catalogue_from_server",
    "load_recipe",
    "validate_recipe",
]

log = get_logger(__name__)

def validate_recipe(
    path: Path | str,
    *,
    catalogue: Catalogue | None = None,
    display: str | None = None,
    printers: KnownPrinters | None = None,
) -> ValidationReport:
    """Every problem in the recipe at ``path`` (and the files it extends).

    ``display`` is how problems name the file (default: ``path`` as given). ``printers``: the
    printers that exist, to check print targets against (None: not checked).
    """
    cat = catalogue if catalogue is not None else DEFAULT_CATALOGUE
    doc = load_document(path, display=display)
    problems = list(doc.problems)
    recipe: Recipe | None = None
    settings_keys = _settings_keys(doc.data) if doc.complete else ()
    if settings_keys:
        problems.append(_settings_not_recipe(doc.display, settings_keys))
    elif doc.complete:
        data = doc.data
        # A value the reading refused (a number beyond a float) or the schema rejected is
        # not judged again (-1 mm is not also "not offered"; 1e999 not also "not a number").
        unread = {p.json_path for p in doc.problems}
        found = [p for p in schema_problems(data, doc) if p.json_path not in unread]
        problems.extend(found)
        ctx = make_context(doc, data, cat)
        rejected = unread | {p.json_path for p in found}
        # Nor is a finding that judged a refused value beside its own (font_size_mm: -4 is
        # not also "min_font_size_mm is larger than font_size_mm").
        problems.extend(p for p in semantic_problems(ctx)
                        if p.json_path not in rejected and rejected.isdisjoint(p.reads))
        if printers is not None:
            problems.extend(
                p for p in check_printer_names(ctx, printers) if p.json_path not in rejected
            )
        if "$.scene.fps_file" not in rejected:
            problems.extend(_fps_file_problems(Path(path), doc, data))
        if not problems:
            recipe = _build_recipe(Path(path), doc, ctx)
    return ValidationReport(_ordered(problems, doc), cat.source, recipe, file=doc.display)


def _settings_keys(data: object) -> tuple[str, ...]:
    """The keys of a settings file given as a recipe: a mapping whose keys are all the
    settings' own (``store``, ``hotfolders``), and so none a recipe's (the two schemas share
    no top-level key: ``test_cmd_validate.py`` holds them to it); () for anything else."""
    if not isinstance(data, Mapping) or not data:
        return ()
    from preform_pipeline.settings.schema import settings_schema  # only for such a mapping

    keys = tuple(str(key) for key in data)
    return keys if set(keys) <= set(settings_schema()["properties"]) else ()


def _settings_not_recipe(file: str, keys: tuple[str, ...]) -> Problem:
    """Said once for a settings file given as a recipe. Checked as a recipe, each of its keys
    was "unknown key 'store' (did you mean 'steps'?)", and 'scene' and 'steps' were missing:
    seven problems that sent a newcomer to edit the settings (session 47's trial)."""
    shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
    return Problem(file, 1, 1, "$",
                   f"this is a settings file ({shown}), not a recipe (scene, steps): give a "
                   f"recipe here; check settings with validate --settings {shlex.quote(file)}")


def load_recipe(
    path: Path | str,
    *,
    catalogue: Catalogue | None = None,
    display: str | None = None,
    printers: KnownPrinters | None = None,
) -> Recipe:
    """The recipe at ``path``; raises :class:`RecipeError` carrying every problem."""
    report = validate_recipe(path, catalogue=catalogue, display=display, printers=printers)
    if report.recipe is None:
        raise RecipeError(report.problems)
    return report.recipe


def _fps_path(path: Path, doc: Document, fps: str) -> Path:
    """A relative ``.fps`` path is relative to the file that names it (maybe a base recipe)."""
    files = {shown: file for file, shown in doc.chain}
    named_in = files.get(doc.position(("scene", "fps_file")).file, path)
    where = named_in.parent / fps
    try:
        return where.resolve()
    except (OSError, ValueError):  # a name no file system takes: said by the check below
        return where.absolute()


def _fps_file_problems(path: Path, doc: Document, data: Any) -> list[Problem]:
    """The scene's ``fps_file`` must be there: the server reads it at ``createScene``, after
    the servers have started and the models were read, and fails every build then."""
    fps = _map(_map(data).get("scene")).get("fps_file")
    if not isinstance(fps, str):
        return []
    where = _fps_path(path, doc, fps)
    try:
        mode = os.stat(where).st_mode
    except (FileNotFoundError, NotADirectoryError):
        what = "file not found"
    except OSError as exc:  # a name too long, a folder that cannot be read
        what = f"cannot be read ({exc.strerror or exc})"
    except ValueError:  # the name holds a NUL, which no file system takes
        what = "cannot be a file's name (it holds a NUL character)"
    else:
        if stat.S_ISREG(mode):
            return []
        what = ("is a folder, not a .fps file" if stat.S_ISDIR(mode)
                else "is not a regular file (a device, pipe or socket)")
    shown = str(where).replace("\0", "\\0")  # written as \0: a NUL would reach the console
    return [doc.problem(("scene", "fps_file"),
                        f"{what}: {shown} (a relative path starts in the folder of the recipe "
                        "that names it)")]


def _ordered(problems: list[Problem], doc: Document) -> tuple[Problem, ...]:
    """Unique problems, file by file in extends order (the recipe last), then by position."""
    rank = {shown: i for i, (_, shown) in enumerate(doc.chain)}
    unique = list(dict.fromkeys(problems))
    return tuple(
        sorted(
            unique,
            key=lambda p: (rank.get(p.file, len(rank)), p.line or 0, p.column or 0),
        )
    )


# --- building the model --------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _build_recipe(path: Path, doc: Document, ctx: Context) -> Recipe:
    data = ctx.data
    scene = _map(data.get("scene"))
    thickness = scene.get("layer_thickness_mm")
    fps = scene.get("fps_file")
    if isinstance(fps, str):
        fps = str(_fps_path(path, doc, fps))
    scene_spec = SceneSpec(
        machine_type=scene.get("machine_type"),
        material_code=scene.get("material_code"),
        layer_thickness_mm=(
            None if thickness is None else ADAPTIVE if thickness == ADAPTIVE else float(thickness)
        ),
        print_setting=scene.get("print_setting", "DEFAULT"),
        fps_file=fps,
    )
    imp = _map(data.get("import"))
    scan = imp.get("scan_to_model")
    import_spec = ImportSpec(
        units=imp.get("units", "DETECTED"),
        repair_behavior=imp.get("repair_behavior", "ERROR"),
        scale=float(imp.get("scale", 1.0)),
        scan_to_model=frozen_mapping(scan) if isinstance(scan, Mapping) else None,
        lock=imp.get("lock", "FREE"),
        units_by_path=tuple(
            (str(entry["match"]), str(entry["units"]))
            for entry in imp.get("units_by_path", ())
            if isinstance(entry, Mapping)
        ),
        ambiguous_units=imp.get("ambiguous_units", "HOLD"),
        min_feature_mm=float(imp.get("min_feature_mm", 0.3)),
    )
    batching = _map(data.get("batching"))
    defaults = BatchingSpec()
    batching_spec = BatchingSpec(
        max_models_per_build=batching.get("max_models_per_build"),
        spacing_mm=float(batching.get("spacing_mm", defaults.spacing_mm)),
        margin_mm=float(batching.get("margin_mm", defaults.margin_mm)),
        layout_attempts=int(batching.get("layout_attempts", defaults.layout_attempts)),
        on_overflow=batching.get("on_overflow", defaults.on_overflow),
        keep_cases_together=bool(
            batching.get("keep_cases_together", defaults.keep_cases_together)
        ),
        allow_rotation=bool(batching.get("allow_rotation", defaults.allow_rotation)),
        empty_builds=bool(batching.get("empty_builds", defaults.empty_builds)),
        packing_density=(
            None if batching.get("packing_density") is None
            else float(batching["packing_density"])
        ),
    )
    outputs = _map(data.get("outputs"))
    output_spec = OutputSpec(
        **{f.name: outputs.get(f.name, getattr(DEFAULT_OUTPUTS, f.name))
           for f in dataclasses.fields(OutputSpec)}
    )
    # A valid recipe names a known machine or none (an .fps file), so technology is known.
    technology = ctx.technology or "SLA"
    steps = tuple(_build_step(raw, doc, technology) for raw in ctx.steps)
    name = data.get("name")
    return Recipe(
        name=name if isinstance(name, str) else path.stem,
        source=path,
        scene=scene_spec,
        import_options=import_spec,
        steps=steps,
        batching=batching_spec,
        outputs=output_spec,
        fields=ctx.fields,
        technology=technology,
        description=str(data.get("description", "")),
        extends_chain=tuple(file for file, _ in doc.chain),
        on_model_failure=(
            "fail_build" if data.get("on_model_failure") == "fail_build" else "drop_case"
        ),
    )


def _build_step(raw: RawStep, doc: Document, technology: Literal["SLA", "SLS"]) -> Step:
    options = dict(raw.options)
    if raw.kind == "validate" and "fail_on" not in options:
        options["fail_on"] = [
            f for f in VALIDATION_FINDINGS if technology == "SLA" or f not in SUPPORT_FINDINGS
        ]
    elif raw.kind == "print":
        options.setdefault("job_name", DEFAULT_JOB_NAME)
    elif raw.kind == "pack_and_cage":
        # The API requires models, and nests packing_type in an object of its own.
        options.setdefault("models", "ALL")
        if isinstance(options.get("packing_type"), str):
            options["packing_type"] = {"packing_type": options["packing_type"]}
    return Step(
        id=raw.id,
        kind=raw.kind,
        options=frozen_mapping(options),
        after=raw.after,
        position=doc.position(raw.options_path, key=True),
    )


# --- the catalogue from a server -----------------------------------------------------------


def catalogue_from_server(
    url: str,
    *,
    timeout: float = DEFAULT_SERVER_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
    fallback: Catalogue = DEFAULT_CATALOGUE,
) -> Catalogue:
    """The catalogue ``GET {url}/list-materials/`` answers, or ``fallback`` saying why not."""
    # Here, not at the top: httpx costs every command's start, and only --server asks.
    import httpx

    from preform_pipeline.urlauth import url_auth

    # A url's ``user:password@`` sent as the Local API client and the health check send it
    # (urlauth: one rule), and named with its password hidden: the catalogue's source is said
    # in the note, each file's line and a problem's message (review rv45-small).
    auth = url_auth(url)
    shown = hide_secrets(url)
    endpoint = auth.url.rstrip("/") + "/list-materials/"
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.get(endpoint, headers=dict(auth.headers()))
            response.raise_for_status()
            body = response.json()
        if not isinstance(body, Mapping) or not body.get("printer_types"):
            raise ValueError("the answer lists no printer types")
        catalogue = Catalogue.from_list_materials(body, source=f"server {shown}")
    except (httpx.HTTPError, ValueError, RecursionError) as exc:
        reason = _reason(exc)
        # Info: the fallback's source carries the reason, and the caller says it once
        # (``validate``'s note); a console warning as well said it a second time.
        log.info("catalogue_server_unreachable", url=endpoint, reason=reason)
        return dataclasses.replace(
            fallback, source=f"{fallback.source} (server {shown} not usable: {reason})"
        )
    log.info("catalogue_fetched", url=endpoint, machine_types=len(catalogue.machines))
    return catalogue


def _reason(exc: Exception) -> str:
    import httpx  # already imported by the caller

    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPError):
        detail = str(exc)
        return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return str(exc)
