"""An output path below a root resolved once is the path render_output_path's resolve gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import TemplateError
from preform_pipeline.recipes.templates import render_output_path, resolved_output_path

VALUES = {"date": "2026-12-04", "build": "bench-001", "recipe": "bench"}


class TestResolvedOutputPath:
    """Rendering below a resolved root resolves only the parts below it, with the same checks."""

    def test_a_plain_folder_gives_the_resolved_rendered_path(self, tmp_path: Path) -> None:
        root = tmp_path / "out"
        template = "{date}/{build}.form"
        expected = render_output_path(template, VALUES, root).resolve()
        assert resolved_output_path(template, VALUES, root.resolve()) == expected
        assert expected == root / "2026-12-04" / "bench-001.form"

    def test_a_link_below_the_root_is_followed_as_resolve_follows_it(
        self, tmp_path: Path
    ) -> None:
        # Needs symlink rights: always there on Linux and macOS, not by default on Windows.
        root = tmp_path / "out"
        (root / "real").mkdir(parents=True)
        (root / "2026-12-04").symlink_to(root / "real", target_is_directory=True)
        got = resolved_output_path("{date}/{build}.form", VALUES, root.resolve())
        assert got == root / "real" / "bench-001.form"
        assert got == render_output_path("{date}/{build}.form", VALUES, root).resolve()

    def test_a_link_out_of_the_root_is_refused(self, tmp_path: Path) -> None:
        root = tmp_path / "out"
        root.mkdir()
        (root / "2026-12-04").symlink_to(tmp_path, target_is_directory=True)
        with pytest.raises(TemplateError, match="outside the output root"):
            resolved_output_path("{date}/{build}.form", VALUES, root.resolve())

    def test_an_unsafe_template_is_refused_before_any_path(self, tmp_path: Path) -> None:
        with pytest.raises(TemplateError):
            resolved_output_path("../{build}.form", VALUES, tmp_path)
