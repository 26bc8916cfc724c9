"""``preform-pipeline validate``: every problem as file:line:col, a summary, exit 0 or 1."""

from __future__ import annotations

import http.server
import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.catalogue import DEFAULT_CATALOGUE
from preform_pipeline.cli import run
from tests.conftest import RECIPES

VALID = """\
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
steps:
  - auto_orient
  - auto_support
  - auto_layout
"""

INVALID = VALID.replace("  - auto_support\n", "  - auto_support:\n      density: -1\n").replace(
    "  - auto_layout\n", "  - auto_layot\n"
)


def invoke(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(["validate", *argv], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a valid and an invalid recipe, as the working directory."""
    (tmp_path / "good.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(INVALID, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class TestTextOutput:
    """Text output lists every problem, then one summary line per file."""

    def test_a_valid_recipe_exits_zero_with_an_ok_line(self, recipes: Path) -> None:
        code, out, err = invoke("good.yaml")
        assert (code, out, err) == (0, "good.yaml: OK (checked against shipped catalogue)\n", "")

    def test_an_invalid_recipe_lists_every_problem_and_exits_one(self, recipes: Path) -> None:
        code, out, _ = invoke("good.yaml", "bad.yaml")
        assert code == 1
        assert out.splitlines() == [
            "good.yaml: OK (checked against shipped catalogue)",
            "bad.yaml:8:16: $.steps[1].auto_support.density: -1 is less than the minimum of 0",
            "bad.yaml:9:5: $.steps[2]: 'auto_layot' is not one of: "
            "auto_orient, auto_support, hollow, add_drain_holes, label, auto_layout, auto_pack, "
            "pack_and_cage, validate, estimate, save_form, screenshot, print, verify "
            "(did you mean 'auto_layout'?)",
            "bad.yaml: 2 problems (checked against shipped catalogue)",
        ]

    def test_a_missing_file_is_a_problem_not_a_crash(self, recipes: Path) -> None:
        code, out, _ = invoke("nope.yaml")
        assert code == 1
        assert out.splitlines()[0] == "nope.yaml: $: file not found"

    def test_every_shipped_recipe_validates_from_the_command_line(self) -> None:
        files = sorted(str(p) for p in RECIPES.rglob("*.yaml"))
        code, out, _ = invoke(*files)
        assert code == 0, out
        assert all(line.endswith("OK (checked against shipped catalogue)")
                   for line in out.splitlines())

    def test_a_settings_file_given_as_a_recipe_is_named_as_one(self, recipes: Path) -> None:
        # Session 47's trial: `validate settings.yaml` said "unknown key 'store' (did you mean
        # 'steps'?)" for each of its keys, and that scene and steps were missing.
        (recipes / "settings.yaml").write_text(
            "store:\n  path: jobs.sqlite3\nhotfolders:\n  inboxes:\n    - path: inbox\n"
            "      recipe: good.yaml\n", encoding="utf-8")
        code, out, _ = invoke("settings.yaml")
        assert code == 1
        assert out.splitlines() == [
            "settings.yaml:1:1: $: this is a settings file (store, hotfolders), not a recipe "
            "(scene, steps): give a recipe here; check settings with validate --settings "
            "settings.yaml",
            "settings.yaml: 1 problem (checked against shipped catalogue)"]
        assert invoke("--settings", "settings.yaml")[0] == 0

    def test_no_recipe_can_be_taken_for_settings(self) -> None:
        # Review rv47-dental: a file is said to be settings when all its keys are the
        # settings' own; that misreads no recipe only while no key is both's.
        from preform_pipeline.recipes.schema import recipe_schema
        from preform_pipeline.settings.schema import settings_schema

        shared = set(recipe_schema()["properties"]) & set(settings_schema()["properties"])
        assert shared == set()

    def test_the_settings_check_it_advises_can_be_pasted_for_a_name_with_a_space(
        self, recipes: Path
    ) -> None:
        # Review rv47-dental: "validate --settings lab settings.yaml" named two files.
        (recipes / "lab settings.yaml").write_text("store:\n  path: jobs.sqlite3\n",
                                                   encoding="utf-8")
        code, out, _ = invoke("lab settings.yaml")
        assert code == 1
        assert out.splitlines()[0].endswith(
            "check settings with validate --settings 'lab settings.yaml'")

    def test_no_recipe_is_a_usage_error(self) -> None:
        code, _, err = invoke()
        assert code == 2
        assert "RECIPE or --settings FILE" in err


class TestJsonOutput:
    """--format json gives tools one object per file with every problem's parts."""

    def test_problems_are_objects_with_file_line_column_path_and_suggestion(
        self, recipes: Path
    ) -> None:
        code, out, _ = invoke("--format", "json", "good.yaml", "bad.yaml")
        assert code == 1
        good, bad = json.loads(out)
        assert good == {"file": "good.yaml", "valid": True,
                        "catalogue_source": "shipped catalogue", "problems": []}
        assert bad["valid"] is False
        assert bad["problems"][1] == {
            "file": "bad.yaml", "line": 9, "column": 5, "path": "$.steps[2]",
            "message": bad["problems"][1]["message"], "suggestion": "auto_layout",
        }


class _Handler(http.server.BaseHTTPRequestHandler):
    body = json.dumps(DEFAULT_CATALOGUE.with_machines(
        m for m in DEFAULT_CATALOGUE.machines if m.technology == "SLS"
    ).to_list_materials()).encode()

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/list-materials/" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    """A real /list-materials/ server on 127.0.0.1 that offers only the Fuse."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class TestServerCatalogue:
    """--server checks against the server's materials, or says it fell back."""

    def test_the_server_catalogue_is_used_and_named(self, recipes: Path, server_url: str) -> None:
        code, out, _ = invoke("--server", server_url, "good.yaml")
        assert code == 1
        assert "unknown machine type 'FORM-4-0'" in out
        assert out.splitlines()[-1] == f"good.yaml: 1 problem (checked against server {server_url})"

    def test_an_unreachable_server_falls_back_and_says_so(self, recipes: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        code, out, err = invoke("--server", url, "--server-timeout", "1", "good.yaml")
        assert code == 0
        assert out.splitlines()[-1] == (
            "good.yaml: OK (checked against shipped catalogue, not on a server)")
        assert f"note: using the shipped catalogue (server {url} not usable" in err

    def test_json_output_names_the_fallback(self, recipes: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        _, out, _ = invoke("--format", "json", "--server", f"http://127.0.0.1:{port}",
                           "good.yaml")
        (report,) = json.loads(out)
        assert report["catalogue_source"].startswith("shipped catalogue (server http://127.0.0.1")
