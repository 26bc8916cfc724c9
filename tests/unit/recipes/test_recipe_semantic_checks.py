"""Semantic checks as the user reads them: the whole line (file:line:column, path, message,
suggestion) for each rule, the edges of each rule, and recipes just inside them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.recipes.recipe_cases import marked_line, only_problem_at, validate_text
from tests.unit.recipes.test_recipe_semantic import CASES, sla, sls

#: Each rule of test_recipe_semantic.CASES as ``validate`` prints it, column included (the
#: column points at the step's key for a misplaced step, at the value for a wrong value).
RENDERED: dict[str, str] = {
    'unknown machine type': (
        "recipe.yaml:2:17: $.scene.machine_type: unknown machine type 'FORM-4-1' (checked against "
        'the shipped catalogue); known: FORM-4-0, FORM-4B-0, FORM-4L-0, FORM-3-1, FORM-3-0, '
        "FORM-3L-0, FS30-1-0 (did you mean 'FORM-4-0'?)"
    ),
    'material of another machine': (
        "recipe.yaml:3:18: $.scene.material_code: material 'FLGPGR04' is not available for Form 4 "
        "(FORM-4-0) in the shipped catalogue; offered: FLGPGR05 (Grey V5), FLGPBK05 (Black V5), "
        "FLGPWH05 (White V5), FLGPCL05 (Clear V5), FLTO2K02 (Tough 2000 V2), FLDUCL22 (Durable "
        "V2), FLFRGR01 (Fast Model), FLRG1011 (Rigid 10K V1.1), FLPMBE01 (Precision Model), "
        "FLDMGR01 (Dental Model V3) (did you mean 'FLGPGR05'?)"
    ),
    'material given by its name': (
        "recipe.yaml:3:18: $.scene.material_code: material 'Dental Model V3' is not available for "
        "Form 4 (FORM-4-0) in the shipped catalogue: material_code takes the code, and Dental "
        "Model V3 is FLDMGR01 (did you mean 'FLDMGR01'?)"
    ),
    'layer thickness the material does not offer': (
        'recipe.yaml:4:23: $.scene.layer_thickness_mm: Clear V5 (FLGPCL05) on Form 4 does not '
        'offer 0.2 mm with print setting DEFAULT in the shipped catalogue; offered: 0.025 mm, 0.05 '
        'mm, 0.1 mm'
    ),
    'adaptive layers on a machine without them': (
        'recipe.yaml:4:23: $.scene.layer_thickness_mm: Nylon 12 Powder (FLP12G01) on Fuse 1+ 30W '
        'does not offer ADAPTIVE with print setting DEFAULT in the shipped catalogue; offered: '
        '0.11 mm'
    ),
    'auto_layout on SLS': (
        'recipe.yaml:6:5: $.steps[0].auto_layout: auto_layout applies to SLA (resin) machines '
        'only, not to Fuse 1+ 30W (use auto_pack or pack_and_cage)'
    ),
    'auto_pack on SLA': (
        'recipe.yaml:6:5: $.steps[0]: auto_pack applies to SLS (powder) machines only, not to Form '
        '4 (use auto_layout)'
    ),
    'pack_and_cage on SLA': (
        'recipe.yaml:6:5: $.steps[0].pack_and_cage: pack_and_cage applies to SLS (powder) machines '
        'only, not to Form 4 (use auto_layout)'
    ),
    'supports on SLS': (
        'recipe.yaml:6:5: $.steps[0]: auto_support applies to SLA (resin) machines only, not to '
        'Fuse 1+ 30W'
    ),
    'DENTAL orientation on SLS': (
        'recipe.yaml:6:25: $.steps[0].auto_orient.mode: DENTAL mode is for dental resin (SLA) '
        'workflows, not for Fuse 1+ 30W'
    ),
    'scan_to_model on SLS': (
        'recipe.yaml:8:3: $.import.scan_to_model: scan_to_model makes dental models for SLA '
        'machines, not for Fuse 1+ 30W'
    ),
    'supports before orientation': (
        'recipe.yaml:6:5: $.steps[0]: auto_support must come after auto_orient (listed later, at '
        'steps[1]): supports are generated for an orientation'
    ),
    'hollowing after supports': (
        'recipe.yaml:6:5: $.steps[0]: auto_support must come after hollow (listed later, at '
        'steps[1]): supports must be generated for the final, hollowed and drained shape'
    ),
    'drain holes before hollowing': (
        'recipe.yaml:6:5: $.steps[0].add_drain_holes: add_drain_holes must come after hollow '
        '(listed later, at steps[1]): drain holes open a hollowed model'
    ),
    'layout before supports': (
        'recipe.yaml:6:5: $.steps[0]: auto_layout must come after auto_support (listed later, at '
        "steps[1]): the layout needs each model's final orientation and supports"
    ),
    'label after supports': (
        'recipe.yaml:6:5: $.steps[0]: auto_support must come after label (listed later, at '
        'steps[1]): supports must be generated for the labelled shape'
    ),
    'print before layout': (
        'recipe.yaml:6:5: $.steps[0].print: print must come after auto_layout (listed later, at '
        'steps[1]): a build is printed after its layout'
    ),
    'print before validation': (
        'recipe.yaml:6:5: $.steps[0].print: print must come after validate (listed later, at '
        'steps[1]): validation must pass before anything is printed'
    ),
    'verify before print': (
        'recipe.yaml:6:5: $.steps[0]: verify must come after print (listed later, at steps[1]): '
        'verification waits for the print that was sent'
    ),
    'duplicate step id': (
        "recipe.yaml:7:10: $.steps[1].id: step id 'auto_orient' is already used by steps[0]; give "
        'this step a unique id'
    ),
    'reserved step id': (
        "recipe.yaml:6:10: $.steps[0].id: step id 'import_models' is reserved for the pipeline's "
        'own first steps; choose another id'
    ),
    'after an unknown step': (
        "recipe.yaml:7:29: $.steps[1].after[0]: no step has the id 'auto_orint' (did you mean "
        "'auto_orient'?)"
    ),
    'after a later step': (
        "recipe.yaml:6:29: $.steps[0].after[0]: 'estimate' is listed later (steps[1]); steps run "
        'in recipe order, so after: may only name earlier steps'
    ),
    'after itself': (
        'recipe.yaml:6:36: $.steps[0].after[0]: a step cannot come after itself'
    ),
    'two print steps': (
        'recipe.yaml:7:5: $.steps[1].print: only one print step is allowed per recipe'
    ),
    'verify without print': (
        'recipe.yaml:6:5: $.steps[0]: verify waits for a print, but no print step is listed'
    ),
    'minimum font larger than the font': (
        'recipe.yaml:10:49: $.steps[0].label.placement.min_font_size_mm: min_font_size_mm (5) is '
        'larger than font_size_mm (3)'
    ),
    'minimum font without shrinking': (
        'recipe.yaml:10:60: $.steps[0].label.placement.min_font_size_mm: min_font_size_mm applies '
        'only with fit: shrink or skip'
    ),
    'label on the supported bottom face': (
        'recipe.yaml:10:25: $.steps[0].label.placement.face: the bottom face carries the supports; '
        'place the label on another face'
    ),
    'engraving through the hollow wall': (
        'recipe.yaml:11:17: $.steps[1].label.depth_mm: engraving 2 mm deep cuts through the 1.5 mm '
        'wall that steps[0] hollows to'
    ),
    'engraving through the scan shell': (
        'recipe.yaml:10:17: $.steps[0].label.depth_mm: engraving 2 mm deep cuts through the 2 mm '
        'shell that scan_to_model hollows to'
    ),
    'drain holes in a solid model': (
        'recipe.yaml:6:5: $.steps[0].add_drain_holes: add_drain_holes needs hollow models: add a '
        'hollow step before it'
    ),
    'search distance with a fixed depth': (
        'recipe.yaml:10:28: $.steps[1].add_drain_holes.max_search_distance: max_search_distance '
        'works with depth_mm: AUTO only'
    ),
    'a drain hole without a diameter': (
        'recipe.yaml:8:20: $.steps[1].add_drain_holes.diameter_mm: a drain hole needs a diameter '
        'above 0 mm'
    ),
    'scan shell without hollowing': (
        'recipe.yaml:10:5: $.import.scan_to_model.wall_thickness_mm: wall_thickness_mm applies '
        'only with hollow: true'
    ),
    'layout spacing wider than planned': (
        'recipe.yaml:6:37: $.steps[0].auto_layout.model_spacing_mm: model_spacing_mm (4) is larger '
        'than batching.spacing_mm (2): builds planned 2 mm apart may not fit when laid out 4 mm '
        'apart'
    ),
    'locked rotation the planner would use': (
        'recipe.yaml:6:34: $.steps[0].auto_layout.lock_rotation: lock_rotation keeps models as '
        'imported, but batching.allow_rotation lets the planner count on turning them; set '
        'batching.allow_rotation: false'
    ),
    'custom bounds upside down': (
        'recipe.yaml:8:19: $.steps[0].auto_layout.custom_bounds.x_min_mm: x_min_mm (50) must be '
        'less than x_max_mm (10)'
    ),
    'custom bounds off the platform': (
        'recipe.yaml:8:19: $.steps[0].auto_layout.custom_bounds.y_max_mm: 70 mm is outside the '
        'Form 4 platform, which spans -62.5 to 62.5 mm in y'
    ),
    'support findings on SLS': (
        "recipe.yaml:7:41: $.steps[1].validate.fail_on[1]: 'cups' concerns supports, which SLS "
        'parts do not have'
    ),
    'printer_ip that is not an address': (
        "recipe.yaml:6:25: $.steps[0].print.printer_ip: 'Form4-Clam' is not an IP address (give a "
        'printer serial name as printer:)'
    ),
    'fly-around into a png': (
        'recipe.yaml:10:15: $.outputs.screenshot: a fly-around screenshot must be saved as .webp'
    ),
    'declared field shadowing a built-in': (
        "recipe.yaml:7:10: $.fields[0]: 'stem' is filled by the pipeline; choose another field "
        'name'
    ),
    'misspelt field in a label': (
        'recipe.yaml:6:19: $.steps[0].label.text: unknown template field {cse_id}; declare other '
        "sidecar fields in `fields:` (did you mean 'case_id'?)"
    ),
    'model field in a per-build path': (
        'recipe.yaml:8:9: $.outputs.form: field {stem} belongs to one model and cannot be filled '
        'here: it is rendered once per build, which may hold several models (set '
        'batching.max_models_per_build: 1 to use model fields)'
    ),
    'sidecar field in a per-build job name': (
        'recipe.yaml:6:35: $.steps[0].print.job_name: field {case_id} belongs to one model and '
        'cannot be filled here: it is rendered once per build, which may hold several models (set '
        'batching.max_models_per_build: 1 to use model fields)'
    ),
    'build field in the output root': (
        'recipe.yaml:8:9: $.outputs.root: field {build} differs from build to build and cannot be '
        'filled here: the output root is fixed for a whole run'
    ),
    'output path climbing out of the root': (
        'recipe.yaml:8:9: $.outputs.form: an output path template may not climb out of '
        "outputs.root with '..'"
    ),
    'absolute output path': (
        'recipe.yaml:8:11: $.outputs.report: an output path template must be relative to '
        'outputs.root, not absolute'
    ),
    'attribute access in a template': (
        'recipe.yaml:8:11: $.outputs.report: {build.__class__}: attribute or index access is not '
        'allowed (use a plain field name such as {case_id})'
    ),
    'index access in a template': (
        'recipe.yaml:6:35: $.steps[0].print.job_name: {recipe[0]}: attribute or index access is '
        'not allowed (use a plain field name such as {case_id})'
    ),
}

#: Step lists and sections the cases below share.
FLY = (
    "  - screenshot:\n      flyaround_transform:\n"
    "        transform: [{yaw: 0, pitch: 30}, {yaw: 90, pitch: 30}]\n"
)
FPS = "scene:\n  fps_file: grey.fps\nsteps:\n"
UNITS = "import:\n  units_by_path:\n"

#: Recipes that break a rule at its edge, or several times.
BROKEN: list[tuple[str, str]] = [
    # technology
    ("technology told by the steps of an .fps scene",
     FPS + "  - auto_support\n  - auto_pack\n"),
    ("an unknown machine is reported once, not for every step",
     sla("  - auto_support\n  - auto_pack\n").replace("FORM-4-0", "FORM-9-0")),
    # order and ids
    ("the first of the later steps is named",
     sla("  - auto_support\n  - hollow\n  - add_drain_holes\n")),
    ("a repeated id does not hide the steps after it",
     sla("  - {id: a, save_form: {}}\n  - {id: a, screenshot: {}}\n"
         "  - {id: b, estimate: {}}\n  - {save_form: {}, after: [b]}\n")),
    ("three print steps",
     sla("  - print: {printer: P}\n  - print: {printer: Q}\n  - print: {printer: R}\n")),
    ("two verify steps",
     sla("  - print: {printer: P}\n  - verify\n  - verify\n")),
    ("steps of unknown kinds cannot be named in after",
     sla("  - frobnicate\n  - {frobnicate: {}}\n  - {save_form: {}, after: [frobnicate]}\n")),
    ("items that are not steps do not hide the steps after them",
     sla("  - 5\n  - [auto_orient]\n  - auto_support\n  - auto_orient\n")),
    ("an unknown step does not hide the steps after it",
     sla("  - frobnicate\n  - auto_support\n  - auto_orient\n")),
    ("an item of two kinds does not hide the steps after it",
     sla("  - {save_form: {}, screenshot: {}}\n  - auto_support\n  - auto_orient\n")),
    ("ids that are not text are not ids",
     sla("  - {id: 7, save_form: {}}\n  - {id: 7, screenshot: {}}\n"
         "  - {id: '', estimate: {}}\n  - {id: '', estimate: {}}\n"
         "  - {save_form: {}, after: [save_form, estimate]}\n")),
    ("a misplaced step without options is shown at its key, on SLS",
     sls("  - auto_layout: null\n")),
    ("a misplaced step without options is shown at its key, on SLA",
     sla("  - auto_pack: null\n")),
    ("steps without options out of order are shown at their key",
     sla("  - auto_support: null\n  - auto_orient: null\n")),
    ("verify steps without options are shown at their key",
     sla("  - verify: null\n  - verify: null\n")),
    # label
    ("engraving exactly as deep as the wall",
     sla("  - hollow: {wall_thickness_mm: 2}\n  - label: {text: x, font_size_mm: 4,"
         " depth_mm: 2, application_mode: ENGRAVE, placement: {face: back}}\n")),
    ("engraving deeper than two walls",
     sla("  - hollow: {wall_thickness_mm: 2}\n  - hollow: {wall_thickness_mm: 1}\n"
         "  - label: {text: x, font_size_mm: 4, depth_mm: 2.5, application_mode: ENGRAVE,"
         " placement: {face: back}}\n")),
    ("a scan shell that is not hollowed does not limit engraving",
     sla("  - label: {text: x, font_size_mm: 4, depth_mm: 3, application_mode: ENGRAVE,"
         " placement: {face: back}}\n",
         "import:\n  scan_to_model:\n    cutoff_height_mm: 5\n    hollow: false\n"
         "    shell_thickness_mm: 2\n")),
    # drain holes
    ("a search distance on one hole of a fixed depth",
     sla("  - hollow\n  - add_drain_holes:\n      diameter_mm: 3\n      drain_holes:\n"
         "        - {position: {x: 0, y: 0, z: 1}, orientation: {x: 0, y: 0, z: -1},"
         " depth_mm: AUTO, max_search_distance: 2}\n"
         "        - {position: {x: 0, y: 0, z: 2}, orientation: {x: 0, y: 0, z: -1},"
         " depth_mm: 4, max_search_distance: 2}\n")),
    ("a search distance with a fixed depth for every hole",
     sla("  - hollow\n  - add_drain_holes:\n      diameter_mm: 3\n      depth_mm: 4\n"
         "      max_search_distance: 2\n      drain_holes:\n"
         "        - {position: {x: 0, y: 0, z: 1}, orientation: {x: 0, y: 0, z: -1},"
         " diameter_mm: 2}\n")),
    # scan_to_model
    ("every hollow-only scan option without hollowing",
     sla("  - auto_orient\n", "import:\n  scan_to_model:\n    cutoff_height_mm: 5\n"
         "    hollow: false\n"
         "    shell_thickness_mm: 2\n    drain_hole_radius_mm: 1\n    drain_hole_max_count: 2\n")),
    # layout
    ("custom bounds of zero width",
     sla("  - auto_layout:\n      custom_bounds: {x_min_mm: 10, x_max_mm: 10,"
         " y_min_mm: 5, y_max_mm: 5}\n")),
    ("custom bounds off the platform on the low side",
     sla("  - auto_layout:\n      custom_bounds: {x_min_mm: -101, x_max_mm: 0}\n")),
    ("model spacing on a pack step of an SLS recipe",
     sls("  - auto_pack: {model_spacing_mm: 3}\n", "batching:\n  spacing_mm: 2\n")),
    ("custom bounds upside down in y without a machine",
     FPS + "  - auto_layout:\n      custom_bounds: {y_min_mm: 9, y_max_mm: 1}\n"),
    # print
    ("printer auto without the material",
     FPS + "  - print: {printer: ' Auto '}\n"),
    ("approval without the steps it needs",
     sla("  - print: {approval: required, fleet_group: g}\n")),
    ("approval with the save_form after the print",
     sla("  - screenshot\n  - print: {printer: P, approval: required}\n  - save_form\n")),
    ("a fly-around with the default screenshot name",
     sla(FLY)),
    # templates
    ("a model field in a per-build report with one model per build",
     sla("  - save_form\n", "batching:\n  max_models_per_build: 1\n"
         "outputs:\n  report: '{stem}.json'\n")),
    ("a model field in a cage label",
     sls("  - pack_and_cage: {cage_label: '{stem}'}\n")),
    ("a run field that is not a field in the output root",
     sla("  - save_form\n", "outputs:\n  root: 'out/{nope}'\n")),
    # units_by_path
    ("a Windows pattern and a repeated one",
     sla("  - save_form\n", UNITS + "    - {match: 'inch\\parts\\*.stl', units: INCHES}\n"
         "    - {match: '*.obj', units: INCHES}\n    - {match: '*.obj', units: MILLIMETERS}\n"
         "    - {match: '*.obj', units: INCHES}\n")),
]

#: Every line ``validate`` reports for each of BROKEN, in order.
PROBLEMS: dict[str, list[str]] = {
    'technology told by the steps of an .fps scene': [
        (
            'recipe.yaml:2:3: $.scene.fps_file: scene.machine_type is missing: the machine an '
            "fps_file was made for is not read from it, and builds are planned on that "
            "machine's "
            'build volume; add scene.machine_type (e.g. FORM-4-0) next to fps_file'
        ),
        (
            'recipe.yaml:4:5: $.steps[0]: auto_support applies to SLA (resin) machines only, not '
            'to SLS machines'
        ),
    ],
    'an unknown machine is reported once, not for every step': [
        (
            "recipe.yaml:2:17: $.scene.machine_type: unknown machine type 'FORM-9-0' (checked "
            'against the shipped catalogue); known: FORM-4-0, FORM-4B-0, FORM-4L-0, FORM-3-1, '
            "FORM-3-0, FORM-3L-0, FS30-1-0 (did you mean 'FORM-4-0'?)"
        ),
    ],
    'the first of the later steps is named': [
        (
            'recipe.yaml:6:5: $.steps[0]: auto_support must come after hollow (listed later, at '
            'steps[1]): supports must be generated for the final, hollowed and drained shape'
        ),
    ],
    'a repeated id does not hide the steps after it': [
        (
            "recipe.yaml:7:10: $.steps[1].id: step id 'a' is already used by steps[0]; give this "
            'step a unique id'
        ),
    ],
    'three print steps': [
        'recipe.yaml:7:5: $.steps[1].print: only one print step is allowed per recipe',
        'recipe.yaml:8:5: $.steps[2].print: only one print step is allowed per recipe',
    ],
    'two verify steps': [
        'recipe.yaml:8:5: $.steps[2]: only one verify step is allowed per recipe',
    ],
    'steps of unknown kinds cannot be named in after': [
        (
            "recipe.yaml:6:5: $.steps[0]: 'frobnicate' is not one of: auto_orient, auto_support, "
            'hollow, add_drain_holes, label, auto_layout, auto_pack, pack_and_cage, validate, '
            'estimate, save_form, screenshot, print, verify'
        ),
        (
            "recipe.yaml:7:6: $.steps[1].frobnicate: unknown key 'frobnicate'; allowed here: id, "
            'after, auto_orient, auto_support, hollow, add_drain_holes, label, auto_layout, '
            'auto_pack, pack_and_cage, validate, estimate, save_form, screenshot, print, verify'
        ),
        "recipe.yaml:8:29: $.steps[2].after[0]: no step has the id 'frobnicate'",
    ],
    'items that are not steps do not hide the steps after them': [
        (
            "recipe.yaml:6:5: $.steps[0]: a step is a step kind's name or a mapping {kind: "
            'options}'
        ),
        (
            "recipe.yaml:7:5: $.steps[1]: a step is a step kind's name or a mapping {kind: "
            'options}'
        ),
        (
            'recipe.yaml:8:5: $.steps[2]: auto_support must come after auto_orient (listed later, '
            'at steps[3]): supports are generated for an orientation'
        ),
    ],
    'an unknown step does not hide the steps after it': [
        (
            "recipe.yaml:6:5: $.steps[0]: 'frobnicate' is not one of: auto_orient, auto_support, "
            'hollow, add_drain_holes, label, auto_layout, auto_pack, pack_and_cage, validate, '
            'estimate, save_form, screenshot, print, verify'
        ),
        (
            'recipe.yaml:7:5: $.steps[1]: auto_support must come after auto_orient (listed later, '
            'at steps[2]): supports are generated for an orientation'
        ),
    ],
    'an item of two kinds does not hide the steps after it': [
        (
            'recipe.yaml:6:5: $.steps[0]: a step names exactly one step kind: auto_orient, '
            'auto_support, hollow, add_drain_holes, label, auto_layout, auto_pack, pack_and_cage, '
            'validate, estimate, save_form, screenshot, print, verify'
        ),
        (
            'recipe.yaml:7:5: $.steps[1]: auto_support must come after auto_orient (listed later, '
            'at steps[2]): supports are generated for an orientation'
        ),
    ],
    'ids that are not text are not ids': [
        'recipe.yaml:6:10: $.steps[0].id: 7 is not of type string',
        'recipe.yaml:7:10: $.steps[1].id: 7 is not of type string',
        'recipe.yaml:8:10: $.steps[2].id: a step id uses letters, digits and _ # . - only',
        'recipe.yaml:9:10: $.steps[3].id: a step id uses letters, digits and _ # . - only',
    ],
    'a misplaced step without options is shown at its key, on SLS': [
        (
            'recipe.yaml:6:5: $.steps[0].auto_layout: auto_layout applies to SLA (resin) machines '
            'only, not to Fuse 1+ 30W (use auto_pack or pack_and_cage)'
        ),
    ],
    'a misplaced step without options is shown at its key, on SLA': [
        (
            'recipe.yaml:6:5: $.steps[0].auto_pack: auto_pack applies to SLS (powder) machines '
            'only, not to Form 4 (use auto_layout)'
        ),
    ],
    'steps without options out of order are shown at their key': [
        (
            'recipe.yaml:6:5: $.steps[0].auto_support: auto_support must come after auto_orient '
            '(listed later, at steps[1]): supports are generated for an orientation'
        ),
    ],
    'verify steps without options are shown at their key': [
        (
            'recipe.yaml:6:5: $.steps[0].verify: verify waits for a print, but no print step is '
            'listed'
        ),
        'recipe.yaml:7:5: $.steps[1].verify: only one verify step is allowed per recipe',
    ],
    'engraving exactly as deep as the wall': [
        (
            'recipe.yaml:7:49: $.steps[1].label.depth_mm: engraving 2 mm deep cuts through the 2 '
            'mm wall that steps[0] hollows to'
        ),
    ],
    'engraving deeper than two walls': [
        (
            'recipe.yaml:8:49: $.steps[2].label.depth_mm: engraving 2.5 mm deep cuts through the 2 '
            'mm wall that steps[0] hollows to'
        ),
        (
            'recipe.yaml:8:49: $.steps[2].label.depth_mm: engraving 2.5 mm deep cuts through the 1 '
            'mm wall that steps[1] hollows to'
        ),
    ],
    'a scan shell that is not hollowed does not limit engraving': [
        (
            'recipe.yaml:11:5: $.import.scan_to_model.shell_thickness_mm: shell_thickness_mm '
            'applies only with hollow: true'
        ),
    ],
    'a search distance on one hole of a fixed depth': [
        (
            'recipe.yaml:11:110: $.steps[1].add_drain_holes.drain_holes[1].max_search_distance: '
            'max_search_distance works with depth_mm: AUTO only'
        ),
    ],
    'a search distance with a fixed depth for every hole': [
        (
            'recipe.yaml:10:28: $.steps[1].add_drain_holes.max_search_distance: '
            'max_search_distance works with depth_mm: AUTO only'
        ),
        (
            'recipe.yaml:12:11: $.steps[1].add_drain_holes.drain_holes[0].max_search_distance: '
            'max_search_distance works with depth_mm: AUTO only'
        ),
    ],
    'every hollow-only scan option without hollowing': [
        (
            'recipe.yaml:11:5: $.import.scan_to_model.shell_thickness_mm: shell_thickness_mm '
            'applies only with hollow: true'
        ),
        (
            'recipe.yaml:12:5: $.import.scan_to_model.drain_hole_radius_mm: drain_hole_radius_mm '
            'applies only with hollow: true'
        ),
        (
            'recipe.yaml:13:5: $.import.scan_to_model.drain_hole_max_count: drain_hole_max_count '
            'applies only with hollow: true'
        ),
    ],
    'custom bounds of zero width': [
        (
            'recipe.yaml:7:33: $.steps[0].auto_layout.custom_bounds.x_min_mm: x_min_mm (10) must '
            'be less than x_max_mm (10)'
        ),
        (
            'recipe.yaml:7:61: $.steps[0].auto_layout.custom_bounds.y_min_mm: y_min_mm (5) must be '
            'less than y_max_mm (5)'
        ),
    ],
    'custom bounds off the platform on the low side': [
        (
            'recipe.yaml:7:33: $.steps[0].auto_layout.custom_bounds.x_min_mm: -101 mm is outside '
            'the Form 4 platform, which spans -100 to 100 mm in x'
        ),
    ],
    'model spacing on a pack step of an SLS recipe': [
        (
            'recipe.yaml:6:35: $.steps[0].auto_pack.model_spacing_mm: model_spacing_mm (3) is '
            'larger than batching.spacing_mm (2): builds planned 2 mm apart may not fit when laid '
            'out 3 mm apart'
        ),
    ],
    'custom bounds upside down in y without a machine': [
        (
            'recipe.yaml:2:3: $.scene.fps_file: scene.machine_type is missing: the machine an '
            "fps_file was made for is not read from it, and builds are planned on that "
            "machine's "
            'build volume; add scene.machine_type (e.g. FORM-4-0) next to fps_file'
        ),
        (
            'recipe.yaml:5:33: $.steps[0].auto_layout.custom_bounds.y_min_mm: y_min_mm (9) must be '
            'less than y_max_mm (1)'
        ),
    ],
    'printer auto without the material': [
        (
            'recipe.yaml:2:3: $.scene.fps_file: scene.machine_type is missing: the machine an '
            "fps_file was made for is not read from it, and builds are planned on that "
            "machine's "
            'build volume; add scene.machine_type (e.g. FORM-4-0) next to fps_file'
        ),
        (
            'recipe.yaml:4:22: $.steps[0].print.printer: printer: auto chooses a printer by the '
            "scene's machine_type and material_code; name both in scene (an fps_file does not say "
            'which material is loaded)'
        ),
    ],
    'approval without the steps it needs': [
        (
            'recipe.yaml:6:23: $.steps[0].print.approval: approval: required needs a save_form '
            'step before print: the held build is sent later from its saved .form'
        ),
        (
            'recipe.yaml:6:23: $.steps[0].print.approval: approval: required needs a screenshot '
            'step before print: the operator approves it from its screenshot'
        ),
        (
            'recipe.yaml:6:23: $.steps[0].print.approval: approval: required needs printer: (a '
            'name, a list or auto); an approved build waits for that printer like any other'
        ),
    ],
    'approval with the save_form after the print': [
        (
            'recipe.yaml:7:35: $.steps[1].print.approval: approval: required needs a save_form '
            'step before print: the held build is sent later from its saved .form'
        ),
    ],
    'a fly-around with the default screenshot name': [
        (
            'recipe.yaml:7:7: $.steps[0].screenshot.flyaround_transform: a fly-around screenshot '
            'must be saved as .webp'
        ),
    ],
    'a model field in a per-build report with one model per build': [
        (
            'recipe.yaml:10:11: $.outputs.report: field {stem} belongs to one model and cannot be '
            'filled here: the per-build report is filled with run and build fields only'
        ),
    ],
    'a model field in a cage label': [
        (
            'recipe.yaml:6:33: $.steps[0].pack_and_cage.cage_label: field {stem} belongs to one '
            'model and cannot be filled here: it is rendered once per build, which may hold '
            'several models (set batching.max_models_per_build: 1 to use model fields)'
        ),
    ],
    'a run field that is not a field in the output root': [
        (
            'recipe.yaml:8:9: $.outputs.root: unknown template field {nope}; known fields: date, '
            'machine, material, recipe, time'
        ),
    ],
    'a Windows pattern and a repeated one': [
        (
            "recipe.yaml:9:15: $.import.units_by_path[0].match: pattern 'inch\\\\parts\\\\*.stl' "
            "uses \\; separate folders with / (did you mean 'inch/parts/*.stl'?)"
        ),
        (
            "recipe.yaml:11:15: $.import.units_by_path[2].match: pattern '*.obj' is already listed "
            'at entry 1; the first match wins, so this one never applies'
        ),
        (
            "recipe.yaml:12:15: $.import.units_by_path[3].match: pattern '*.obj' is already listed "
            'at entry 1; the first match wins, so this one never applies'
        ),
    ],
}

#: Recipes just inside a rule (its edge, its other branch).
ACCEPTED: list[tuple[str, str]] = [
    ("DENTAL orientation on SLA", sla("  - auto_orient: {mode: DENTAL}\n")),
    ("a search distance with depth AUTO", sla(
        "  - hollow\n  - add_drain_holes: {diameter_mm: 3, depth_mm: AUTO,"
        " max_search_distance: 2, placement: {face: back}}\n")),
    ("a search distance without a depth", sla(
        "  - hollow\n  - add_drain_holes: {diameter_mm: 3, max_search_distance: 2,"
        " placement: {face: back}}\n")),
    ("a fixed depth without a search distance", sla(
        "  - hollow\n  - add_drain_holes: {diameter_mm: 3, depth_mm: 4,"
        " placement: {face: back}}\n")),
    ("drain holes in a hollow scan", sla(
        "  - add_drain_holes: {diameter_mm: 3, placement: {face: back}}\n",
        "import:\n  scan_to_model:\n    cutoff_height_mm: 5\n    hollow: true\n"
        "    shell_thickness_mm: 2\n")),
    ("the smallest font at the font size", sla(
        "  - label: {text: x, font_size_mm: 4, depth_mm: 1,"
        " placement: {face: back, fit: shrink, min_font_size_mm: 4}}\n")),
    ("a label on the bottom without supports", sla(
        "  - label: {text: x, font_size_mm: 4, depth_mm: 1, placement: {face: bottom}}\n")),
    ("embossing higher than the wall", sla(
        "  - hollow: {wall_thickness_mm: 1}\n  - label: {text: x, font_size_mm: 4,"
        " depth_mm: 2, application_mode: EMBOSS, placement: {face: back}}\n")),
    ("layout spacing as planned", sla(
        "  - auto_layout: {model_spacing_mm: 2}\n", "batching:\n  spacing_mm: 2\n")),
    ("locked rotation the planner keeps", sla(
        "  - auto_layout: {lock_rotation: true}\n", "batching:\n  allow_rotation: false\n")),
    ("custom bounds at the platform's edges", sla(
        "  - auto_layout:\n      custom_bounds: {x_min_mm: -100, x_max_mm: 100,"
        " y_min_mm: -62.5, y_max_mm: 62.5}\n")),
    ("custom bounds wider in x than the platform is deep", sla(
        "  - auto_layout:\n      custom_bounds: {x_min_mm: -90, x_max_mm: 90}\n")),
    ("custom bounds of an .fps scene inside its machine's platform",
     FPS.replace("grey.fps\n", "grey.fps\n  machine_type: FORM-4-0\n") + "  - auto_layout:\n"
        "      custom_bounds: {x_min_mm: -70, x_max_mm: 70}\n"),
    ("support findings on SLA", sla(
        "  - auto_layout\n  - validate: {fail_on: [interferences, cups]}\n")),
    ("an IPv6 printer address", sla("  - print: {printer_ip: 'fe80::1'}\n")),
    ("printer auto with machine and material", sla("  - print: {printer: auto}\n")),
    ("a fly-around saved as webp", sla(FLY, "outputs:\n  screenshot: 'shots/{build}.webp'\n")),
    ("a screenshot without a fly-around as png", sla(
        "  - screenshot\n", "outputs:\n  screenshot: 'shots/{build}.png'\n")),
    ("model fields in a per-build printer with one model per build", sla(
        "  - print: {printer: '{case_id}', job_name: '{stem}'}\n",
        "batching:\n  max_models_per_build: 1\n")),
    ("patterns with / each listed once", sla(
        "  - save_form\n", UNITS + "    - {match: 'inch/*.stl', units: INCHES}\n"
        "    - {match: '*.stl', units: MILLIMETERS}\n")),
]


class TestWhatTheUserReads:
    """Each rule's problem renders as file:line:column, path, message and suggestion."""

    @pytest.mark.parametrize(
        ("name", "text", "json_path"), [pytest.param(*c[:3], id=c[0]) for c in CASES]
    )
    def test_the_rendered_line(
        self, tmp_path: Path, name: str, text: str, json_path: str
    ) -> None:
        problem = only_problem_at(validate_text(tmp_path, text), json_path)
        assert problem.line == marked_line(text)
        assert str(problem) == RENDERED[name]

    def test_every_rule_has_its_rendered_line(self) -> None:
        assert set(RENDERED) == {c[0] for c in CASES}


class TestEdgesOfTheRules:
    """At a rule's edge, or broken several times, every problem is reported once, in order."""

    @pytest.mark.parametrize(("name", "text"), [pytest.param(*c, id=c[0]) for c in BROKEN])
    def test_every_problem_is_reported(self, tmp_path: Path, name: str, text: str) -> None:
        report = validate_text(tmp_path, text)
        assert [str(p) for p in report.problems] == PROBLEMS[name]
        assert not report.valid


class TestJustInsideTheRules:
    """Recipes just inside a rule are valid."""

    @pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in ACCEPTED])
    def test_recipe_is_valid(self, tmp_path: Path, text: str) -> None:
        report = validate_text(tmp_path, text)
        assert report.problems == (), "\n".join(str(p) for p in report.problems)
        assert report.valid


class TestAnFpsSceneWithAMistypedMachine:
    """A machine type given but refused by the schema is said once, where it is written: not
    also "scene.machine_type is missing" at the ``fps_file`` (review rv47-after)."""

    def test_only_the_machine_type_s_own_problem_is_said(self, tmp_path: Path) -> None:
        report = validate_text(tmp_path, FPS.replace("grey.fps\n", "grey.fps\n  machine_type: 7\n")
                               + "  - auto_orient\n")
        assert [(p.json_path, p.line) for p in report.problems] == [("$.scene.machine_type", 3)]
