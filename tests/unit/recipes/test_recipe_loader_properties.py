"""Property: whatever a recipe file holds, loading raises only RecipeError, with problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preform_pipeline.errors import RecipeError
from preform_pipeline.recipes.validate import load_recipe, validate_recipe

KEYS = ["name", "extends", "scene", "import", "steps", "batching", "outputs", "machine_type",
        "material_code", "layer_thickness_mm", "auto_orient", "label", "print", "after", "id"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["FORM-4-0", "FLGPGR05", "ADAPTIVE", "auto_orient", "{stem}", "base.yaml"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner,
                        max_size=4),
    ),
    max_leaves=16,
)
documents = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), values,
                            max_size=6)
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[
        *settings().suppress_health_check, HealthCheck.function_scoped_fixture
    ]
)


def _load(path: Path) -> None:
    report = validate_recipe(path)
    assert report.valid == (report.recipe is not None)
    try:
        load_recipe(path)
    except RecipeError as exc:
        assert exc.problems == report.problems
        assert all(p.message for p in exc.problems)
    else:
        assert report.valid


class TestAnyRecipe:
    """Random recipe files validate to a report; loading them fails only with RecipeError."""

    @PROPERTY_SETTINGS
    @given(document=documents)
    def test_any_yaml_document(self, tmp_path: Path, document: dict[str, Any]) -> None:
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        _load(path)

    @PROPERTY_SETTINGS
    @given(data=st.binary(max_size=200))
    def test_any_bytes(self, tmp_path: Path, data: bytes) -> None:
        path = tmp_path / "recipe.yaml"
        path.write_bytes(data)
        _load(path)
