"""Property: whatever a settings file or variable holds, loading raises only ConfigError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import ENVIRONMENT_VARIABLES, load_settings, settings_schema

SECTIONS = sorted(settings_schema().get("properties", {}))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=12,
)
#: A document shaped like settings: known sections (and a few unknown keys) with any values.
documents = st.dictionaries(
    st.one_of(st.sampled_from(SECTIONS), st.text(max_size=12)),
    st.one_of(values, st.dictionaries(st.text(max_size=16), values, max_size=5)),
    max_size=5,
)
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[
        *settings().suppress_health_check, HealthCheck.function_scoped_fixture
    ]
)


def _load_or_config_error(path: Path | None, env: dict[str, str]) -> None:
    try:
        load_settings(path, env=env)
    except ConfigError as exc:
        assert exc.message  # says what is wrong
        assert exc.hint  # and what to do


class TestAnySettings:
    """Random files and variables load, or fail with a ConfigError that has a hint."""

    @PROPERTY_SETTINGS
    @given(document=documents)
    def test_any_yaml_document(self, tmp_path: Path, document: dict[str, Any]) -> None:
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        _load_or_config_error(path, {})

    @PROPERTY_SETTINGS
    @given(data=st.binary(max_size=200))
    def test_any_bytes(self, tmp_path: Path, data: bytes) -> None:
        path = tmp_path / "settings.yaml"
        path.write_bytes(data)
        _load_or_config_error(path, {})

    @PROPERTY_SETTINGS
    @given(
        chosen=st.dictionaries(
            st.sampled_from([v.name for v in ENVIRONMENT_VARIABLES]),
            st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                           blacklist_characters="\x00"), max_size=30),
            max_size=4,
        )
    )
    def test_any_environment_variables(self, chosen: dict[str, str]) -> None:
        _load_or_config_error(None, chosen)
