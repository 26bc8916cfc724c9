"""Reading recipe YAML with positions, and merging ``extends`` chains."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from preform_pipeline.recipes.loader import (
    MAX_NODES,
    format_json_path,
    load_document,
    parse_yaml,
)
from preform_pipeline.recipes.model import Position
from preform_pipeline.yamlerrors import safe_load, shape_problem
from tests.unit.recipes.recipe_cases import SLA_RECIPE, only_problem_at, validate_text


class TestPositions:
    """Every key and value knows the line and column it was written at."""

    def test_values_and_keys_carry_one_based_positions(self) -> None:
        root, problems = parse_yaml("a: 1\nb:\n  c: [x, y]\n", "f.yaml")
        assert problems == []
        assert root is not None
        c = root.mapping["b"].mapping["c"]
        assert c.key_pos == Position("f.yaml", 3, 3)
        assert c.pos == Position("f.yaml", 3, 6)
        assert c.items[1].pos == Position("f.yaml", 3, 10)

    def test_a_missing_path_points_at_the_deepest_key_that_exists(self, tmp_path: Path) -> None:
        path = tmp_path / "r.yaml"
        path.write_text("scene:\n  machine_type: FORM-4-0\n", encoding="utf-8")
        doc = load_document(path, display="r.yaml")
        assert doc.position(("scene", "material_code")) == Position("r.yaml", 1, 1)

    def test_a_mapping_value_is_shown_at_its_key(self, tmp_path: Path) -> None:
        path = tmp_path / "r.yaml"
        path.write_text("steps:\n  - label:\n      text: x\n", encoding="utf-8")
        doc = load_document(path, display="r.yaml")
        assert doc.position(("steps", 0, "label")) == Position("r.yaml", 2, 5)

    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ((), "$"),
            (("steps", 2, "auto_support", "density"), "$.steps[2].auto_support.density"),
            (("outputs", "my key"), "$.outputs['my key']"),
        ],
    )
    def test_json_paths_read_like_jsonpath(
        self, path: tuple[str | int, ...], expected: str
    ) -> None:
        assert format_json_path(path) == expected


class TestYamlRules:
    """What PyYAML would accept silently or dangerously is reported."""

    def test_a_duplicate_key_is_an_error_at_the_second_key(self) -> None:
        _, problems = parse_yaml("scene:\n  a: 1\n  a: 2\n", "f.yaml")
        assert [(p.line, p.column, p.json_path) for p in problems] == [(3, 3, "$.scene.a")]
        assert "first given at line 2" in problems[0].message

    @pytest.mark.parametrize(
        "text",
        ["a: !!python/object/apply:os.system [ls]\n", "a: !!python/name:os.system x\n",
         "a: !custom x\n", "a: !!binary aGVsbG8=\n"],
    )
    def test_application_tags_are_refused(self, text: str) -> None:
        _, problems = parse_yaml(text, "f.yaml")
        assert len(problems) == 1
        assert "not supported" in problems[0].message

    def test_timestamps_stay_text(self) -> None:
        root, _ = parse_yaml("d: 2024-05-01\n", "f.yaml")
        assert root is not None
        assert root.to_python() == {"d": "2024-05-01"}

    def test_merge_keys_work_and_explicit_keys_win(self) -> None:
        root, problems = parse_yaml("x: &d {a: 1, b: 2}\ny:\n  <<: *d\n  b: 3\n", "f.yaml")
        assert problems == []
        assert root is not None
        assert root.to_python()["y"] == {"a": 1, "b": 3}

    def test_recursive_aliases_are_stopped_at_the_alias(self) -> None:
        # At the alias inside its own value, the anchor named: the anchor alone (1:4) was
        # where the value starts, not what made it endless.
        _, problems = parse_yaml("a: &a\n  - b\n  - *a\n", "f.yaml")
        assert [str(p) for p in problems] == [
            "f.yaml:3:5: $.a[1]: recursive alias: *a is inside the value it names (&a at "
            "line 1), which would never end"]

    @pytest.mark.parametrize("reader", ["recipe", "settings"])
    def test_an_alias_bomb_is_placed_where_an_alias_makes_it_huge(self, reader: str) -> None:
        # The anchors' values are small where they are written (12,346 values in all); the
        # list on line 6 names the largest ten times. Placed at the anchor, as before, the
        # problem was "f.yaml:1:10", a line of ten letters.
        lines = ["defs:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in (1, 2, 3)]
        lines += ["scene:", f"  x: [{', '.join(['*a3'] * 10)}]"]
        text = "\n".join(lines) + "\n"
        if reader == "recipe":  # the C loader, composed again to place it
            _, problems = parse_yaml(text, "f.yaml")
            (problem,) = problems
            where = (problem.line, problem.column, problem.json_path, problem.message)
        else:  # settings files and sidecars: safe_load
            with pytest.raises(yaml.YAMLError) as caught:
                safe_load(text)
            shape = shape_problem(caught.value)
            assert shape is not None
            where = (int(shape.mark.line) + 1, int(shape.mark.column) + 1,
                     format_json_path(shape.path), shape.message)
        assert where == (
            7, 42, "$.scene.x[7]",
            f"too large: over {MAX_NODES} values once its aliases (*name) are expanded, "
            "reached inside *a3 here (&a3 at line 5); write each value out once")

    def test_alias_bombs_are_stopped(self) -> None:
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 7):
            refs = ", ".join([f"*a{i - 1}"] * 10)
            lines.append(f"a{i}: &a{i} [{refs}]")
        _, problems = parse_yaml("\n".join(lines) + "\n", "f.yaml")
        assert any(str(MAX_NODES) in p.message for p in problems)

    def test_a_syntax_error_has_its_line_and_column(self) -> None:
        root, problems = parse_yaml("scene:\n  a: [1, 2\n  b: 3\n", "f.yaml")
        assert root is None
        assert problems[0].line == 3
        assert problems[0].message.startswith("YAML syntax error")

    def test_an_empty_file_is_an_error(self) -> None:
        root, problems = parse_yaml("# nothing\n", "f.yaml")
        assert root is None
        assert "empty" in problems[0].message

    def test_a_recipe_must_be_a_mapping(self, tmp_path: Path) -> None:
        report = validate_text(tmp_path, "- auto_orient\n")
        assert [p.message for p in report.problems] == [
            "a recipe is a YAML mapping of keys (scene:, steps:, ...)"
        ]


BASE = """\
name: base
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
steps:
  - auto_orient
  - auto_support
  - auto_layout
batching:
  spacing_mm: 3
  margin_mm: 4
"""


class TestExtends:
    """A recipe extends a base: mappings merge, lists and scalars replace, errors stay put."""

    def write(self, folder: Path, name: str, text: str) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def test_mappings_merge_and_lists_are_replaced(self, tmp_path: Path) -> None:
        self.write(tmp_path, "base/b.yaml", BASE)
        child = self.write(
            tmp_path,
            "child.yaml",
            "extends: base/b.yaml\nbatching:\n  margin_mm: 6\nsteps:\n  - auto_orient\n",
        )
        doc = load_document(child, display="child.yaml")
        assert doc.problems == []
        data = doc.data
        assert data["batching"] == {"spacing_mm": 3, "margin_mm": 6}
        assert data["steps"] == ["auto_orient"]
        assert data["import"] == {"units": "MILLIMETERS", "repair_behavior": "REPAIR"}
        assert "extends" not in data

    def test_null_removes_what_the_base_set_and_the_name_is_not_inherited(
        self, tmp_path: Path
    ) -> None:
        self.write(tmp_path, "b.yaml", BASE)
        child = self.write(tmp_path, "child.yaml", "extends: b.yaml\nimport:\n  units: null\n")
        data = load_document(child).data
        assert data["import"] == {"repair_behavior": "REPAIR"}
        assert "name" not in data

    def test_the_chain_lists_the_base_first(self, tmp_path: Path) -> None:
        self.write(tmp_path, "a.yaml", BASE)
        self.write(tmp_path, "b.yaml", "extends: a.yaml\n")
        child = self.write(tmp_path, "c.yaml", "extends: b.yaml\n")
        doc = load_document(child)
        assert [p.name for p, _ in doc.chain] == ["a.yaml", "b.yaml", "c.yaml"]

    def test_an_error_in_an_inherited_value_points_into_the_base_file(
        self, tmp_path: Path
    ) -> None:
        self.write(tmp_path, "base/b.yaml", BASE.replace("margin_mm: 4", "margin_mm: -4"))
        report = validate_text(tmp_path, "extends: base/b.yaml\nname: child\n", "child.yaml")
        problem = only_problem_at(report, "$.batching.margin_mm")
        assert (problem.file, problem.line, problem.column) == ("base/b.yaml", 15, 14)

    def test_an_override_is_reported_in_the_file_that_overrides(self, tmp_path: Path) -> None:
        self.write(tmp_path, "b.yaml", BASE)
        report = validate_text(
            tmp_path, "extends: b.yaml\nbatching:\n  spacing_mm: nope\n", "child.yaml"
        )
        problem = only_problem_at(report, "$.batching.spacing_mm")
        assert (problem.file, problem.line, problem.column) == ("child.yaml", 3, 15)

    def test_a_cycle_is_reported_at_the_extends_that_closes_it(self, tmp_path: Path) -> None:
        self.write(tmp_path, "a.yaml", "extends: b.yaml\n")
        self.write(tmp_path, "b.yaml", "scene: {}\nextends: a.yaml\n")
        report = validate_text(tmp_path, "extends: b.yaml\n", "a.yaml")
        assert [(p.file, p.line, p.column) for p in report.problems] == [("b.yaml", 2, 10)]
        assert report.problems[0].message == "extends cycle: a.yaml -> b.yaml -> a.yaml"

    def test_a_recipe_extending_itself_is_a_cycle(self, tmp_path: Path) -> None:
        report = validate_text(tmp_path, "extends: recipe.yaml\n")
        assert "extends cycle" in report.problems[0].message

    def test_a_missing_base_is_reported_at_the_extends_value(self, tmp_path: Path) -> None:
        report = validate_text(tmp_path, SLA_RECIPE + "extends: nope.yaml\n")
        assert [(p.line, p.column, p.json_path) for p in report.problems] == [
            (9, 10, "$.extends")
        ]
        assert "not found" in report.problems[0].message

    def test_a_base_through_a_missing_folder_is_named_as_written(self, tmp_path: Path) -> None:
        # b.yaml is there, but missing/ is not, so missing/../b.yaml cannot be opened; the
        # name was shown folded to 'b.yaml', a file that exists (session 44).
        self.write(tmp_path, "b.yaml", SLA_RECIPE)
        report = validate_text(tmp_path, "extends: missing/../b.yaml\n")
        assert [p.message for p in report.problems] == [
            "base recipe 'missing/../b.yaml' not found"]

    def test_a_base_in_a_folder_is_shown_beside_the_recipe(self, tmp_path: Path) -> None:
        report = validate_text(tmp_path, "extends: ./base//nope.yaml\n", "sub/child.yaml")
        assert [p.message for p in report.problems] == [
            "base recipe 'sub/base/nope.yaml' not found"]

    def test_a_syntax_error_in_the_base_is_reported_in_the_base(self, tmp_path: Path) -> None:
        self.write(tmp_path, "b.yaml", "scene: [\n")
        report = validate_text(tmp_path, "extends: b.yaml\n")
        assert [p.file for p in report.problems] == ["b.yaml"]
