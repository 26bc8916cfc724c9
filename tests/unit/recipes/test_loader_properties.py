"""Property-based tests of the recipe and settings loaders: findings or the project's errors.

Any YAML-ish text must give a report (recipes) or settings / a ConfigError (settings), never
another exception, and quickly.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preform_pipeline.errors import ConfigError
from preform_pipeline.recipes import validate_recipe
from preform_pipeline.recipes.settings_check import validate_settings
from preform_pipeline.settings import load_settings

FAST = settings(
    max_examples=50,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

keys = st.sampled_from([
    "name", "scene", "steps", "outputs", "batching", "machine_type", "material_code",
    "layer_thickness_mm", "auto_layout", "label", "text", "report", "extends", "servers",
    "count", "store", "path", "hotfolders", "inboxes", "recipe", "logging", "level",
    "output_root", "follow_symlinks", "<<", "&a", "*a", "!!python/object", "x\ty",
])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
texts = st.one_of(
    values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.lists(st.one_of(keys, st.sampled_from([":", " ", "\n", "\t", "- ", "{", "[", "'", '"']),
                       st.text(max_size=5)), max_size=40).map("".join),
)


class TestRecipeLoader:
    """validate_recipe reports problems for any text; it never raises."""

    @FAST
    @given(texts)
    def test_any_text_gives_a_report(self, tmp_path: Path, text: str) -> None:
        path = tmp_path / "r.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        report = validate_recipe(path)
        assert report.valid or report.problems


class TestSettingsLoader:
    """load_settings gives settings or a ConfigError; validate_settings always a report."""

    @FAST
    @given(texts)
    def test_any_text_gives_settings_or_a_config_error(self, tmp_path: Path, text: str) -> None:
        path = tmp_path / "s.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_settings(path, env={})
        except ConfigError as exc:
            assert str(exc)
        report = validate_settings(path)
        assert all(p.message for p in report.problems)
