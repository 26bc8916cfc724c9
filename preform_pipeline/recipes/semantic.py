"""Checks a JSON Schema cannot express: the recipe against the machine, itself and hot folders.

Each check is a small function ``check(ctx) -> Iterator[Problem]`` (the shape of
python-jsonschema's keyword functions); :data:`CHECKS` lists them and :func:`semantic_problems`
runs them all, so every problem is reported at once. Checks run even when the schema found
problems, so they read the raw data defensively: a value of the wrong type is simply skipped
here (the schema has already said what is wrong with it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from preform_pipeline.catalogue import ADAPTIVE, Catalogue, MachineType, Material
from preform_pipeline.errors import Problem
from preform_pipeline.recipes.loader import Document, JsonPath
from preform_pipeline.recipes.model import (
    AUTO_PRINTER,
    MACHINE_TYPE_NEEDED,
    MACHINE_TYPE_NEEDED_HINT,
    SLA_ONLY_STEPS,
    SLS_ONLY_STEPS,
    STEP_KINDS,
    SUPPORT_FINDINGS,
)
from preform_pipeline.recipes.orientation import orientation_problems
from preform_pipeline.recipes.schema import closest
from preform_pipeline.recipes.templates import (
    TEMPLATE_FIELDS_BUILTIN,
    Scope,
    check_path_template,
    check_template,
)

__all__ = [
    "CHECKS",
    "LAYOUT_KINDS",
    "ORDER_RULES",
    "RESERVED_STEP_IDS",
    "Context",
    "OrderRule",
    "RawStep",
    "make_context",
    "raw_steps",
    "semantic_problems",
]

#: Step kinds that arrange models on the platform or in the build volume.
LAYOUT_KINDS: Final[tuple[str, ...]] = ("auto_layout", "auto_pack", "pack_and_cage")
#: Ids the planner gives its synthetic first nodes; recipe steps may not use them.
RESERVED_STEP_IDS: Final[frozenset[str]] = frozenset(
    {"create_scene", "import_models", "scan_to_model"}
)
_HOLLOW_ONLY_SCAN_OPTIONS: Final[tuple[str, ...]] = (
    "shell_thickness_mm",
    "wall_thickness_mm",
    "drain_hole_radius_mm",
    "drain_hole_height_ratio",
    "drain_hole_suppression_distance_mm",
    "drain_hole_max_count",
)
_FLOAT_TOLERANCE: Final = 1e-6


@dataclass(frozen=True)
class OrderRule:
    """Steps of kinds ``first`` must be listed before steps of kinds ``then``."""

    first: tuple[str, ...]
    then: tuple[str, ...]
    reason: str


ORDER_RULES: Final[tuple[OrderRule, ...]] = (
    OrderRule(("auto_orient",), ("auto_support",), "supports are generated for an orientation"),
    OrderRule(("hollow", "add_drain_holes"), ("auto_support",),
              "supports must be generated for the final, hollowed and drained shape"),
    OrderRule(("hollow",), ("add_drain_holes",), "drain holes open a hollowed model"),
    OrderRule(("auto_orient",), ("label",), "label placement uses the oriented model"),
    OrderRule(("label",), ("auto_support",), "supports must be generated for the labelled shape"),
    OrderRule(("auto_orient", "auto_support"), LAYOUT_KINDS,
              "the layout needs each model's final orientation and supports"),
    OrderRule(LAYOUT_KINDS, ("validate",), "interferences and bounds are known after the layout"),
    OrderRule(("auto_support",), ("estimate",), "estimates include the supports"),
    OrderRule(LAYOUT_KINDS, ("print",), "a build is printed after its layout"),
    OrderRule(("validate",), ("print",), "validation must pass before anything is printed"),
    OrderRule(("print",), ("verify",), "verification waits for the print that was sent"),
)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class RawStep:
    """One well-formed item of ``steps``, normalised from either of its two spellings."""

    index: int
    kind: str
    id: str
    options: Mapping[str, Any]
    after: tuple[str, ...]
    #: True when the item was just the kind's name (``- save_form``).
    short: bool = False

    @property
    def path(self) -> JsonPath:
        return ("steps", self.index)

    @property
    def options_path(self) -> JsonPath:
        return self.path if self.short else (*self.path, self.kind)

    def option_path(self, *keys: str | int) -> JsonPath:
        return (*self.path, self.kind, *keys)


def raw_steps(data: Any) -> list[RawStep]:
    """The recipe's steps with ids assigned; malformed items are skipped."""
    items = _map(data).get("steps")
    if not isinstance(items, list):
        return []
    out: list[RawStep] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        short = isinstance(item, str)
        if short:
            kinds = [item] if item in STEP_KINDS else []
            options: Mapping[str, Any] = {}
            given_id, after_value = None, None
        elif isinstance(item, Mapping):
            kinds = [k for k in item if k in STEP_KINDS]
            options = _map(item.get(kinds[0])) if len(kinds) == 1 else {}
            given_id, after_value = item.get("id"), item.get("after")
        else:
            continue
        if len(kinds) != 1:
            continue
        kind = kinds[0]
        seen[kind] = seen.get(kind, 0) + 1
        default_id = kind if seen[kind] == 1 else f"{kind}#{seen[kind]}"
        step_id = given_id if isinstance(given_id, str) and given_id else default_id
        after = tuple(a for a in after_value if isinstance(a, str)) if isinstance(
            after_value, list) else ()
        out.append(RawStep(index, kind, step_id, options, after, short))
    return out


@dataclass(frozen=True)
class Context:
    """What every check reads: the document, its data, the catalogue and derived facts."""

    doc: Document
    data: Mapping[str, Any]
    catalogue: Catalogue
    machine: MachineType | None
    #: None when the recipe names a machine type the catalogue does not know.
    technology: Literal["SLA", "SLS"] | None
    steps: list[RawStep]
    fields: tuple[str, ...]

    def problem(
        self,
        path: Sequence[str | int],
        message: str,
        suggestion: str | None = None,
        *,
        key: bool = False,
        reads: Sequence[Sequence[str | int]] = (),
    ) -> Problem:
        return self.doc.problem(path, message, suggestion, key=key, reads=reads)

    def of_kind(self, *kinds: str) -> list[RawStep]:
        return [s for s in self.steps if s.kind in kinds]

    @property
    def scene(self) -> Mapping[str, Any]:
        return _map(self.data.get("scene"))

    @property
    def batching(self) -> Mapping[str, Any]:
        return _map(self.data.get("batching"))

    @property
    def scan_to_model(self) -> Mapping[str, Any] | None:
        value = _map(self.data.get("import")).get("scan_to_model")
        return value if isinstance(value, Mapping) else None

    @property
    def one_model_per_build(self) -> bool:
        return self.batching.get("max_models_per_build") == 1


def make_context(doc: Document, data: Any, catalogue: Catalogue) -> Context:
    root = _map(data)
    scene = _map(root.get("scene"))
    machine_type = _str(scene.get("machine_type"))
    machine = catalogue.machine(machine_type) if machine_type else None
    steps = raw_steps(root)
    technology: Literal["SLA", "SLS"] | None
    if machine is not None:
        technology = machine.technology
    elif machine_type is not None:
        technology = None  # an unknown machine: reported once, not again for every step
    elif any(s.kind in SLS_ONLY_STEPS for s in steps):
        # Scene settings from an .fps file alone: the steps tell the technology.
        technology = "SLS"
    else:
        technology = "SLA"
    raw_fields = root.get("fields")
    fields = tuple(f for f in raw_fields if isinstance(f, str)) if isinstance(
        raw_fields, list) else ()
    return Context(doc, root, catalogue, machine, technology, steps, fields)


# --- scene against the catalogue -----------------------------------------------------------


def check_machine_and_material(ctx: Context) -> Iterator[Problem]:
    """Machine type, material and layer thickness exist together in the catalogue."""
    scene = ctx.scene
    machine_type = _str(scene.get("machine_type"))
    source = ctx.catalogue.source
    if machine_type is None:
        return
    if ctx.machine is None:
        yield ctx.problem(
            ("scene", "machine_type"),
            f"unknown machine type {machine_type!r} (checked against the {source}); known: "
            + ", ".join(ctx.catalogue.type_ids),
            closest(machine_type, ctx.catalogue.type_ids),
        )
        return
    code = _str(scene.get("material_code"))
    if code is None:
        return
    material = ctx.machine.material(code)
    if material is None:
        yield _unknown_material(ctx, code, machine_type, source)
        return
    thickness = scene.get("layer_thickness_mm")
    if thickness is None or (_num(thickness) is None and thickness != ADAPTIVE):
        return
    setting = _str(scene.get("print_setting")) or "DEFAULT"
    if not _supports(material, thickness, setting):
        offered = ", ".join(_thickness_text(t) for t in dict.fromkeys(material.thicknesses))
        yield ctx.problem(
            ("scene", "layer_thickness_mm"),
            f"{material.label} ({code}) on {ctx.machine.label} does not offer "
            f"{_thickness_text(thickness)} with print setting {setting} in the {source}; "
            f"offered: {offered}",
        )


#: How many of a machine's materials an unknown material's problem lists (a real server
#: offers dozens; the rest are counted).
_MATERIALS_LISTED: Final = 12


def check_fps_machine_type(ctx: Context) -> Iterator[Problem]:
    """An ``fps_file`` scene names its machine type: the planner reads the build volume from
    it for every batch, so a recipe without it could pass here and fail each batch. One
    given but not a string is the schema's to say, not "missing" too (``reads``)."""
    scene = ctx.scene
    if "fps_file" in scene and _str(scene.get("machine_type")) is None:
        yield ctx.problem(("scene", "fps_file"),
                          f"{MACHINE_TYPE_NEEDED}; {MACHINE_TYPE_NEEDED_HINT}", key=True,
                          reads=[("scene", "machine_type")])


def _unknown_material(ctx: Context, code: str, machine_type: str, source: str) -> Problem:
    """A ``material_code`` the machine does not offer: said with what it does offer (codes
    and names), and a material's name given for its code (``Dental Model V3``, as PreForm
    and the bottle show it) answered with the code."""
    assert ctx.machine is not None
    materials = ctx.machine.materials
    head = (f"material {code!r} is not available for {ctx.machine.label} ({machine_type}) "
            f"in the {source}")
    named = next((m for m in materials if m.label.casefold() == code.strip().casefold()),
                 None)
    if named is not None:
        return ctx.problem(("scene", "material_code"),
                           f"{head}: material_code takes the code, and {named.label} is "
                           f"{named.code}", named.code)
    offered = ", ".join(f"{m.code} ({m.label})" for m in materials[:_MATERIALS_LISTED])
    more = len(materials) - _MATERIALS_LISTED
    if more > 0:
        offered += f" and {more} more"
    return ctx.problem(("scene", "material_code"), f"{head}; offered: {offered}",
                       closest(code, [m.code for m in materials]))


def _thickness_text(value: Any) -> str:
    return str(value) if value == ADAPTIVE else f"{float(value):g} mm"


def _supports(material: Material, thickness: Any, print_setting: str) -> bool:
    for setting in material.settings:
        if setting.print_setting != print_setting:
            continue
        wanted = setting.layer_thickness_mm
        if wanted == ADAPTIVE or thickness == ADAPTIVE:
            if wanted == thickness:
                return True
        elif abs(float(wanted) - float(thickness)) < _FLOAT_TOLERANCE:
            return True
    return False


# --- technology ----------------------------------------------------------------------------


def check_technology(ctx: Context) -> Iterator[Problem]:
    """Steps and imports that exist only for resin (SLA) or only for powder (SLS) machines."""
    what = ctx.machine.label if ctx.machine is not None else f"{ctx.technology} machines"
    for step in ctx.steps:
        if ctx.technology == "SLS" and step.kind in SLA_ONLY_STEPS:
            alternative = " (use auto_pack or pack_and_cage)" if step.kind == "auto_layout" else ""
            yield ctx.problem(
                step.options_path,
                f"{step.kind} applies to SLA (resin) machines only, not to {what}{alternative}",
                key=True,
            )
        elif ctx.technology == "SLA" and step.kind in SLS_ONLY_STEPS:
            yield ctx.problem(
                step.options_path,
                f"{step.kind} applies to SLS (powder) machines only, not to {what} "
                "(use auto_layout)",
                key=True,
            )
        elif ctx.technology == "SLS" and step.kind == "auto_orient" and step.options.get(
                "mode") == "DENTAL":
            yield ctx.problem(
                step.option_path("mode"),
                f"DENTAL mode is for dental resin (SLA) workflows, not for {what}",
            )
    if ctx.technology == "SLS" and ctx.scan_to_model is not None:
        yield ctx.problem(
            ("import", "scan_to_model"),
            f"scan_to_model makes dental models for SLA machines, not for {what}",
            key=True,
        )


# --- steps: order, ids, repeats ------------------------------------------------------------


def check_step_order(ctx: Context) -> Iterator[Problem]:
    """Each step comes after the steps whose results it needs."""
    for rule in ORDER_RULES:
        firsts = ctx.of_kind(*rule.first)
        for step in ctx.of_kind(*rule.then):
            later = [f for f in firsts if f.index > step.index]
            if later:
                other = later[0]
                yield ctx.problem(
                    step.options_path,
                    f"{step.kind} must come after {other.kind} (listed later, at "
                    f"steps[{other.index}]): {rule.reason}",
                    key=True,
                )


def check_step_ids(ctx: Context) -> Iterator[Problem]:
    """Ids are unique and ``after:`` names earlier steps that exist."""
    index_of: dict[str, int] = {}
    for step in ctx.steps:
        where = (*step.path, "id")
        if step.id in RESERVED_STEP_IDS:
            yield ctx.problem(where, f"step id {step.id!r} is reserved for the pipeline's own "
                              "first steps; choose another id")
        if step.id in index_of:
            yield ctx.problem(
                where,
                f"step id {step.id!r} is already used by steps[{index_of[step.id]}]; give this "
                "step a unique id",
            )
            continue
        index_of[step.id] = step.index
    for step in ctx.steps:
        for n, wanted in enumerate(step.after):
            where = (*step.path, "after", n)
            if wanted == step.id:
                yield ctx.problem(where, "a step cannot come after itself")
            elif wanted not in index_of:
                yield ctx.problem(
                    where, f"no step has the id {wanted!r}", closest(wanted, index_of)
                )
            elif index_of[wanted] > step.index:
                yield ctx.problem(
                    where,
                    f"{wanted!r} is listed later (steps[{index_of[wanted]}]); steps run in "
                    "recipe order, so after: may only name earlier steps",
                )


def check_single_steps(ctx: Context) -> Iterator[Problem]:
    """A build is printed once and verified once; verify needs a print to wait for."""
    for kind in ("print", "verify"):
        for extra in ctx.of_kind(kind)[1:]:
            yield ctx.problem(
                extra.options_path, f"only one {kind} step is allowed per recipe", key=True
            )
    if ctx.of_kind("verify") and not ctx.of_kind("print"):
        step = ctx.of_kind("verify")[0]
        yield ctx.problem(
            step.options_path, "verify waits for a print, but no print step is listed", key=True
        )


# --- step options --------------------------------------------------------------------------


def check_label(ctx: Context) -> Iterator[Problem]:
    """Label font size and depth fit the rule and the model's walls."""
    hollow_walls = [
        (s, _num(s.options.get("wall_thickness_mm"))) for s in ctx.of_kind("hollow")
    ]
    scan = ctx.scan_to_model or {}
    shell = _num(scan.get("shell_thickness_mm")) if scan.get("hollow") is True else None
    supported = bool(ctx.of_kind("auto_support"))
    for step in ctx.of_kind("label"):
        opts = step.options
        font = _num(opts.get("font_size_mm"))
        depth = _num(opts.get("depth_mm"))
        placement = _map(opts.get("placement"))
        min_font = _num(placement.get("min_font_size_mm"))
        if min_font is not None and font is not None and min_font > font:
            yield ctx.problem(
                step.option_path("placement", "min_font_size_mm"),
                f"min_font_size_mm ({min_font:g}) is larger than font_size_mm ({font:g})",
                reads=[step.option_path("font_size_mm")],
            )
        if min_font is not None and placement.get("fit") == "fail":
            yield ctx.problem(
                step.option_path("placement", "min_font_size_mm"),
                "min_font_size_mm applies only with fit: shrink or skip",
            )
        if placement.get("face") == "bottom" and supported:
            yield ctx.problem(
                step.option_path("placement", "face"),
                "the bottom face carries the supports; place the label on another face",
            )
        if opts.get("application_mode") == "ENGRAVE" and depth is not None:
            for hollow, wall in hollow_walls:
                if wall is not None and depth >= wall:
                    yield ctx.problem(
                        step.option_path("depth_mm"),
                        f"engraving {depth:g} mm deep cuts through the {wall:g} mm wall that "
                        f"steps[{hollow.index}] hollows to",
                    )
            if shell is not None and depth >= shell:
                yield ctx.problem(
                    step.option_path("depth_mm"),
                    f"engraving {depth:g} mm deep cuts through the {shell:g} mm shell that "
                    "scan_to_model hollows to",
                )


def check_drain_holes(ctx: Context) -> Iterator[Problem]:
    """Drain holes go into hollowed models, and AUTO depth is what a search distance needs."""
    scan = ctx.scan_to_model or {}
    hollowed = bool(ctx.of_kind("hollow")) or scan.get("hollow") is True
    for step in ctx.of_kind("add_drain_holes"):
        if not hollowed:
            yield ctx.problem(
                step.options_path,
                "add_drain_holes needs hollow models: add a hollow step before it",
                key=True,
            )
        diameter = _num(step.options.get("diameter_mm"))
        if diameter is not None and diameter <= 0:
            yield ctx.problem(step.option_path("diameter_mm"), "a drain hole needs a diameter "
                              "above 0 mm")
        yield from _search_needs_auto(ctx, step.options, step.option_path())
        holes = step.options.get("drain_holes")
        if isinstance(holes, list):
            for n, hole in enumerate(holes):
                merged = {**step.options, **_map(hole)}
                yield from _search_needs_auto(ctx, merged, step.option_path("drain_holes", n))


def _search_needs_auto(
    ctx: Context, options: Mapping[str, Any], path: JsonPath
) -> Iterator[Problem]:
    if "max_search_distance" in options and options.get("depth_mm", "AUTO") != "AUTO":
        yield ctx.problem(
            (*path, "max_search_distance"),
            "max_search_distance works with depth_mm: AUTO only",
        )


def check_scan_to_model(ctx: Context) -> Iterator[Problem]:
    """Shell, wall and drain-hole options of scan_to_model need hollow: true."""
    scan = ctx.scan_to_model
    if scan is None or scan.get("hollow") is True:
        return
    for key in _HOLLOW_ONLY_SCAN_OPTIONS:
        if key in scan:
            yield ctx.problem(
                ("import", "scan_to_model", key),
                f"{key} applies only with hollow: true",
                key=True,
            )


def check_layout(ctx: Context) -> Iterator[Problem]:
    """Layout options agree with the platform and with the plan the batching rules make."""
    spacing = _num(ctx.batching.get("spacing_mm"))
    allow_rotation = ctx.batching.get("allow_rotation", True) is True
    for step in ctx.of_kind(*LAYOUT_KINDS):
        step_spacing = _num(step.options.get("model_spacing_mm"))
        if spacing is not None and step_spacing is not None and step_spacing > spacing:
            yield ctx.problem(
                step.option_path("model_spacing_mm"),
                f"model_spacing_mm ({step_spacing:g}) is larger than batching.spacing_mm "
                f"({spacing:g}): builds planned {spacing:g} mm apart may not fit when laid out "
                f"{step_spacing:g} mm apart",
            )
        if step.kind == "auto_layout" and step.options.get("lock_rotation") is True and (
                allow_rotation):
            yield ctx.problem(
                step.option_path("lock_rotation"),
                "lock_rotation keeps models as imported, but batching.allow_rotation lets the "
                "planner count on turning them; set batching.allow_rotation: false",
            )
        bounds = _map(step.options.get("custom_bounds"))
        yield from _check_bounds(ctx, step, bounds)


def _check_bounds(ctx: Context, step: RawStep, bounds: Mapping[str, Any]) -> Iterator[Problem]:
    for axis, extent_index in (("x", 0), ("y", 1)):
        low = _num(bounds.get(f"{axis}_min_mm"))
        high = _num(bounds.get(f"{axis}_max_mm"))
        if low is not None and high is not None and low >= high:
            yield ctx.problem(
                step.option_path("custom_bounds", f"{axis}_min_mm"),
                f"{axis}_min_mm ({low:g}) must be less than {axis}_max_mm ({high:g})",
            )
        if ctx.machine is None:
            continue
        half = ctx.machine.build_volume_mm[extent_index] / 2
        for name, value in ((f"{axis}_min_mm", low), (f"{axis}_max_mm", high)):
            if value is not None and abs(value) > half + _FLOAT_TOLERANCE:
                yield ctx.problem(
                    step.option_path("custom_bounds", name),
                    f"{value:g} mm is outside the {ctx.machine.label} platform, which spans "
                    f"-{half:g} to {half:g} mm in {axis}",
                )


def _orientations(ctx: Context) -> Iterator[tuple[JsonPath, Mapping[str, Any]]]:
    """Every orientation the recipe gives (a label's, each drain hole's), with its path."""
    for step in ctx.of_kind("label"):
        yield step.option_path("orientation"), _map(step.options.get("orientation"))
    for step in ctx.of_kind("add_drain_holes"):
        holes = step.options.get("drain_holes")
        for n, hole in enumerate(holes if isinstance(holes, list) else ()):
            yield (step.option_path("drain_holes", n, "orientation"),
                   _map(_map(hole).get("orientation")))


def check_orientations(ctx: Context) -> Iterator[Problem]:
    """An orientation is finite, a matrix a rotation, directions at right angles
    (:mod:`preform_pipeline.recipes.orientation`)."""
    for path, orientation in _orientations(ctx):
        for where, message in orientation_problems(orientation, path):
            yield ctx.problem(where, message)


def check_validation_findings(ctx: Context) -> Iterator[Problem]:
    """SLS parts have no supports, so support findings cannot fail an SLS build."""
    if ctx.technology != "SLS":
        return
    for step in ctx.of_kind("validate"):
        fail_on = step.options.get("fail_on")
        if not isinstance(fail_on, list):
            continue
        for n, finding in enumerate(fail_on):
            if isinstance(finding, str) and finding in SUPPORT_FINDINGS:
                yield ctx.problem(
                    step.option_path("fail_on", n),
                    f"{finding!r} concerns supports, which SLS parts do not have",
                )


def check_print_target(ctx: Context) -> Iterator[Problem]:
    """A literal printer_ip is an IP address."""
    for step in ctx.of_kind("print"):
        ip = _str(step.options.get("printer_ip"))
        if ip is None or "{" in ip:
            continue
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            yield ctx.problem(
                step.option_path("printer_ip"),
                f"{ip!r} is not an IP address (give a printer serial name as printer:)",
            )


def check_auto_printer(ctx: Context) -> Iterator[Problem]:
    """``printer: auto`` chooses by the scene's machine type and material, so it needs both."""
    for step in ctx.of_kind("print"):
        printer = _str(step.options.get("printer"))
        if printer is None or printer.strip().lower() != AUTO_PRINTER:
            continue
        scene = ctx.scene
        if _str(scene.get("machine_type")) is None or _str(scene.get("material_code")) is None:
            yield ctx.problem(
                step.option_path("printer"),
                "printer: auto chooses a printer by the scene's machine_type and material_code; "
                "name both in scene (an fps_file does not say which material is loaded)",
            )


def check_approval(ctx: Context) -> Iterator[Problem]:
    """A build held for approval is approved from its screenshot and later sent from its saved
    .form, so both are made before the print; dispatch sends it to a printer by name."""
    for step in ctx.of_kind("print"):
        if step.options.get("approval") != "required":
            continue
        before = {s.kind for s in ctx.steps[: ctx.steps.index(step)]}
        for kind, why in (("save_form", "the held build is sent later from its saved .form"),
                          ("screenshot", "the operator approves it from its screenshot")):
            if kind not in before:
                yield ctx.problem(step.option_path("approval"),
                                  f"approval: required needs a {kind} step before print: {why}")
        if "printer" not in step.options:
            yield ctx.problem(step.option_path("approval"),
                              "approval: required needs printer: (a name, a list or auto); an "
                              "approved build waits for that printer like any other")


def check_screenshot(ctx: Context) -> Iterator[Problem]:
    """A fly-around is an animation, which the server writes as .webp only."""
    outputs = _map(ctx.data.get("outputs"))
    target = _str(outputs.get("screenshot")) or "{date}/{build}.png"
    for step in ctx.of_kind("screenshot"):
        if "flyaround_transform" in step.options and not target.endswith(".webp"):
            path: JsonPath = ("outputs", "screenshot") if "screenshot" in outputs else (
                step.option_path("flyaround_transform"))
            yield ctx.problem(path, "a fly-around screenshot must be saved as .webp")


# --- templates -----------------------------------------------------------------------------


def check_fields(ctx: Context) -> Iterator[Problem]:
    """Declared sidecar fields do not shadow the pipeline's own fields."""
    for n, name in enumerate(ctx.fields):
        if name in TEMPLATE_FIELDS_BUILTIN:
            yield ctx.problem(
                ("fields", n), f"{name!r} is filled by the pipeline; choose another field name"
            )


def check_templates(ctx: Context) -> Iterator[Problem]:
    """Every template names fields that will have a value where it is rendered."""
    per_build: Scope = "model" if ctx.one_model_per_build else "build"
    build_reason = (
        "it is rendered once per build, which may hold several models "
        "(set batching.max_models_per_build: 1 to use model fields)"
    )
    outputs = _map(ctx.data.get("outputs"))
    targets: list[tuple[JsonPath, Any, Scope, str, bool]] = [
        (("outputs", "root"), outputs.get("root"), "run",
         "the output root is fixed for a whole run", False),
    ]
    for key in ("form", "screenshot"):
        targets.append((("outputs", key), outputs.get(key), per_build, build_reason, True))
    # A build's report is written with the build's fields only, even when the build holds one
    # model: a model or sidecar field there would leave every report unwritten.
    targets.append((("outputs", "report"), outputs.get("report"), "build",
                    "the per-build report is filled with run and build fields only", True))
    for step in ctx.steps:
        if step.kind == "label":
            targets.append(
                (step.option_path("text"), step.options.get("text"), "model", "", False)
            )
        elif step.kind == "print":
            for key in ("printer", "printer_ip", "fleet_group", "job_name"):
                targets.append((step.option_path(key), step.options.get(key), per_build,
                                build_reason, False))
        elif step.kind == "pack_and_cage":
            targets.append((step.option_path("cage_label"), step.options.get("cage_label"),
                            per_build, build_reason, False))
    for path, template, scope, reason, is_path in targets:
        if not isinstance(template, str):
            continue
        for issue in check_template(template, scope=scope, extra_fields=ctx.fields,
                                    scope_reason=reason):
            yield ctx.problem(path, issue.message, issue.suggestion)
        if is_path:
            for issue in check_path_template(template):
                yield ctx.problem(path, issue.message, issue.suggestion)


def check_units_by_path(ctx: Context) -> Iterator[Problem]:
    """Units patterns are written with ``/`` and each names one set of files once."""
    entries = _map(ctx.data.get("import")).get("units_by_path")
    if not isinstance(entries, list):
        return
    seen: dict[str, int] = {}
    for n, entry in enumerate(entries):
        pattern = _str(_map(entry).get("match"))
        if pattern is None:
            continue
        path: JsonPath = ("import", "units_by_path", n, "match")
        if "\\" in pattern:
            yield ctx.problem(
                path, f"pattern {pattern!r} uses \\; separate folders with /",
                pattern.replace("\\", "/"),
            )
        if pattern in seen:
            yield ctx.problem(
                path, f"pattern {pattern!r} is already listed at entry {seen[pattern]}; "
                "the first match wins, so this one never applies",
            )
        seen.setdefault(pattern, n)


Check = Callable[[Context], Iterator[Problem]]

#: Every semantic check, in the order their problems are reported.
CHECKS: Final[tuple[Check, ...]] = (
    check_machine_and_material,
    check_fps_machine_type,
    check_technology,
    check_step_order,
    check_step_ids,
    check_single_steps,
    check_label,
    check_drain_holes,
    check_scan_to_model,
    check_layout,
    check_orientations,
    check_validation_findings,
    check_print_target,
    check_auto_printer,
    check_approval,
    check_screenshot,
    check_fields,
    check_templates,
    check_units_by_path,
)


def semantic_problems(ctx: Context, checks: Sequence[Check] = CHECKS) -> list[Problem]:
    """Every problem every check finds."""
    return [problem for check in checks for problem in check(ctx)]
