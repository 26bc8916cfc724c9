"""File paths reach the server absolute and mapped; relative ones are refused before sending."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from preform_pipeline.api import PreFormClient, ScanToModelOptions
from preform_pipeline.api.paths import default_path_mapper, is_absolute_server_path, to_server_path
from tests.unit.api.api_fakes import ScriptedServer, ok, scene_json


class TestRelativePaths:
    """A relative path is refused with a clear message and nothing is sent."""

    @pytest.mark.parametrize(
        "call",
        [
            lambda c: c.import_model("scene-1", "models/part.stl"),
            lambda c: c.load_form(Path("job.form")),
            lambda c: c.save_form("scene-1", "out/job.form"),
            lambda c: c.save_screenshot("scene-1", "shot.png"),
            lambda c: c.save_fps_file("scene-1", "grey.fps"),
            lambda c: c.replace_model("scene-1", "m-1", "part.stl"),
            lambda c: c.scan_to_model(
                "scene-1", "scan.stl", ScanToModelOptions(cutoff_height_mm=1)
            ),
        ],
        ids=["import", "load_form", "save_form", "screenshot", "fps", "replace", "scan"],
    )
    def test_is_refused_before_sending(
        self, call: Callable[[PreFormClient], object], server: ScriptedServer, client: PreFormClient
    ) -> None:
        with pytest.raises(ValueError, match="relative path; the Local API needs an absolute path"):
            call(client)

        assert server.sent == []


class TestMapping:
    """Absolute paths go through the path mapper, whose answer must itself be absolute."""

    def test_the_default_mapper_sends_the_resolved_local_path(
        self, tmp_path: Path, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("POST", "/load-form/", ok(scene_json()))
        target = tmp_path / "sub" / ".." / "job.form"

        client.load_form(target)

        [sent] = server.calls("POST")
        assert sent.body == {"file": str((tmp_path / "job.form").resolve())}

    def test_a_custom_mapper_translates_to_the_servers_file_system(
        self, tmp_path: Path, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.on("POST", "/scene/scene-1/save-form/", ok())
        client = make_client(path_mapper=lambda p: "\\\\nas\\jobs\\" + p.name)

        client.save_form("scene-1", tmp_path / "job.form")

        assert server.calls("POST")[0].body == {"file": "\\\\nas\\jobs\\job.form"}

    def test_a_mapper_that_returns_a_relative_path_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="fix the server's path map"):
            to_server_path(tmp_path / "a.stl", lambda p: p.name)

    @pytest.mark.parametrize(
        ("text", "absolute"),
        [
            ("/srv/jobs/a.stl", True),
            ("C:\\jobs\\a.stl", True),
            ("\\\\nas\\share\\a.stl", True),
            ("jobs/a.stl", False),
            ("C:a.stl", False),
        ],
    )
    def test_absolute_server_paths_of_either_flavour(self, text: str, absolute: bool) -> None:
        assert is_absolute_server_path(text) is absolute

    def test_the_default_mapper_resolves(self, tmp_path: Path) -> None:
        assert default_path_mapper(tmp_path / "x" / ".." / "y.stl") == str(
            (tmp_path / "y.stl").resolve()
        )


class TestFileKinds:
    """Screenshots must be .png/.webp and print settings .fps, as the contract's patterns say."""

    def test_a_screenshot_with_another_suffix_is_refused(
        self, tmp_path: Path, server: ScriptedServer, client: PreFormClient
    ) -> None:
        with pytest.raises(ValueError, match=r"\.png or \.webp"):
            client.save_screenshot("scene-1", tmp_path / "shot.jpg")
        assert server.sent == []

    def test_a_webp_screenshot_is_accepted(
        self, tmp_path: Path, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("POST", "/scene/scene-1/save-screenshot/", ok())

        client.save_screenshot("scene-1", tmp_path / "fly.webp")

        assert server.calls("POST")[0].body["file"].endswith("fly.webp")

    def test_a_print_settings_file_must_end_in_fps(
        self, tmp_path: Path, server: ScriptedServer, client: PreFormClient
    ) -> None:
        with pytest.raises(ValueError, match=r"\.fps"):
            client.save_fps_file("scene-1", tmp_path / "grey.json")
        assert server.sent == []
