"""Loading recipes into the model, the example recipes, and catalogues from a server."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from preform_pipeline.catalogue import DEFAULT_CATALOGUE
from preform_pipeline.errors import RecipeError
from preform_pipeline.logging import capture_logs
from preform_pipeline.recipes import Recipe, load_recipe, validate_recipe
from preform_pipeline.recipes.validate import catalogue_from_server
from tests.conftest import RECIPES
from tests.unit.recipes.recipe_cases import SLA_RECIPE, SLS_RECIPE

EXAMPLES = sorted(RECIPES.rglob("*.yaml"))


class TestExampleRecipes:
    """Every recipe shipped in recipes/ validates, and together they cover the workflows."""

    @pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(RECIPES)))
    def test_example_validates(self, path: Path) -> None:
        report = validate_recipe(path)
        assert report.problems == (), "\n".join(str(p) for p in report.problems)

    def _all(self) -> list[Recipe]:
        return [load_recipe(p) for p in EXAMPLES]

    def test_there_are_at_least_five(self) -> None:
        assert len([p for p in EXAMPLES if p.parent == RECIPES]) >= 5

    def test_a_dental_form4_recipe_orients_and_lays_out_in_dental_mode_with_case_labels(
        self,
    ) -> None:
        def dental(r: Recipe) -> bool:
            orient, layout, label = r.step("auto_orient"), r.step("auto_layout"), r.step("label")
            return (
                r.scene.machine_type == "FORM-4-0"
                and orient is not None and orient.options.get("mode") == "DENTAL"
                and layout is not None and layout.options.get("mode") == "DENTAL"
                and label is not None and label.options["text"] == "{case_id}"
                and r.has_step("print")
            )

        assert any(dental(r) for r in self._all())

    def test_the_workflows_of_the_issue_are_covered(self) -> None:
        recipes = self._all()
        assert any(r.has_step("hollow") and r.has_step("add_drain_holes")
                   and r.scene.material_code == "FLDMGR01" for r in recipes)
        assert any(r.scene.material_code == "FLGPGR05" for r in recipes)
        assert any(r.scene.machine_type == "FORM-4L-0" for r in recipes)
        assert any(r.scene.machine_type == "FS30-1-0" and r.has_step("auto_pack")
                   for r in recipes)
        assert any(r.import_options.scan_to_model is not None for r in recipes)
        assert any(len(r.extends_chain) > 1 for r in recipes)


class TestModel:
    """A valid recipe becomes frozen values with ids, defaults and positions."""

    def write(self, tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def test_scene_import_batching_and_outputs_are_read(self, tmp_path: Path) -> None:
        recipe = load_recipe(self.write(tmp_path, SLA_RECIPE + (
            "import: {units: INCHES, scale: 2, repair_behavior: REPAIR}\n"
            "batching: {max_models_per_build: 3, on_overflow: fail}\n"
            "outputs: {form: 'forms/{build}.form'}\n"
        )))
        assert recipe.name == "r"
        assert recipe.technology == "SLA"
        assert recipe.scene.to_api() == {
            "machine_type": "FORM-4-0", "material_code": "FLGPGR05",
            "layer_thickness_mm": 0.1, "print_setting": "DEFAULT",
        }
        assert recipe.import_options.import_options() == {
            "units": "INCHES", "repair_behavior": "REPAIR"
        }
        assert recipe.import_options.scale == 2.0
        assert (recipe.batching.max_models_per_build, recipe.batching.on_overflow) == (3, "fail")
        assert recipe.batching.spacing_mm == 2.0
        assert recipe.outputs.form == "forms/{build}.form"
        assert recipe.outputs.report == "{date}/{build}.json"

    def test_steps_get_ids_positions_and_read_only_options(self, tmp_path: Path) -> None:
        recipe = load_recipe(self.write(tmp_path, SLA_RECIPE + (
            "  - save_form\n"
            "  - save_form\n"
            "  - id: final\n"
            "    after: [auto_orient]\n"
            "    save_form: {}\n"
        )))
        assert recipe.step_ids == (
            "auto_orient", "auto_support", "auto_layout", "save_form", "save_form#2", "final"
        )
        final = recipe.steps[-1]
        assert final.after == ("auto_orient",)
        assert final.position is not None
        assert (final.position.line, final.position.column) == (13, 5)
        with pytest.raises(TypeError):
            final.options["x"] = 1  # type: ignore[index]

    def test_defaults_make_options_api_ready(self, tmp_path: Path) -> None:
        recipe = load_recipe(self.write(tmp_path, (
            "scene: {machine_type: FORM-4-0, material_code: FLGPGR05, layer_thickness_mm: 0.1}\n"
            "steps:\n"
            "  - label: {text: '{case_id}', font_size_mm: 3, depth_mm: 1,\n"
            "            position: {x: 0, y: 0, z: 1}, orientation: {x: 0, y: 0, z: 0}}\n"
            "  - auto_layout\n"
            "  - validate\n"
            "  - print: {fleet_group: q-1}\n"
        )))
        validate_step = recipe.step("validate")
        assert validate_step is not None
        assert list(validate_step.options["fail_on"]) == [
            "undersupported", "unsupported_minima", "cups", "interferences", "out_of_bounds"
        ]
        print_step = recipe.step("print")
        assert print_step is not None
        assert print_step.api_options() == {"printer": "q-1", "job_name": "{job}"}
        label = recipe.step("label")
        assert label is not None
        assert label.api_options() == {
            "label": "{case_id}", "font_size_mm": 3, "depth_mm": 1,
            "position": {"x": 0, "y": 0, "z": 1}, "orientation": {"x": 0, "y": 0, "z": 0},
        }

    def test_sls_defaults_leave_out_support_findings_and_nest_packing_type(
        self, tmp_path: Path
    ) -> None:
        recipe = load_recipe(self.write(tmp_path, SLS_RECIPE.replace(
            "  - auto_pack\n", "  - pack_and_cage: {packing_type: PACK_HEIGHT}\n  - validate\n"
        )))
        assert recipe.technology == "SLS"
        step = recipe.step("pack_and_cage")
        assert step is not None
        assert step.api_options() == {"packing_type": {"packing_type": "PACK_HEIGHT"},
                                      "models": "ALL"}
        validate_step = recipe.step("validate")
        assert validate_step is not None
        assert list(validate_step.options["fail_on"]) == ["interferences", "out_of_bounds"]

    def test_an_fps_file_is_relative_to_the_file_that_names_it(self, tmp_path: Path) -> None:
        self.write(tmp_path, "scene: {fps_file: grey.fps, machine_type: FORM-4-0}\n"
                   "steps: [auto_orient]\n", "base/b.yaml")
        (tmp_path / "base" / "grey.fps").write_text("{}\n", encoding="utf-8")
        recipe = load_recipe(self.write(tmp_path, "extends: base/b.yaml\n", "child.yaml"))
        assert recipe.scene.fps_file == str((tmp_path / "base" / "grey.fps").resolve())
        assert recipe.scene.to_api() == {"fps_file": recipe.scene.fps_file}
        assert recipe.name == "child"
        assert recipe.extends_chain == (tmp_path / "base" / "b.yaml", tmp_path / "child.yaml")

    def test_scan_to_model_options_are_kept(self, tmp_path: Path) -> None:
        recipe = load_recipe(self.write(tmp_path, SLA_RECIPE + (
            "import:\n  scan_to_model: {cutoff_height_mm: 5, hollow: true}\n"
        )))
        assert recipe.import_options.uses_scan_to_model
        assert dict(recipe.import_options.scan_to_model or {}) == {
            "cutoff_height_mm": 5, "hollow": True
        }

    def test_an_invalid_recipe_raises_with_every_problem(self, tmp_path: Path) -> None:
        path = self.write(tmp_path, SLA_RECIPE.replace("0.1", "-1") + "  - auto_pack\n")
        with pytest.raises(RecipeError) as caught:
            load_recipe(path)
        paths = [p.json_path for p in caught.value.problems]
        assert "$.scene.layer_thickness_mm" in paths
        assert "$.steps[3]" in paths
        assert "2 problems in recipe" in str(caught.value)

    def test_a_missing_file_is_one_problem(self, tmp_path: Path) -> None:
        report = validate_recipe(tmp_path / "nope.yaml", display="nope.yaml")
        assert [(p.file, p.line, p.message) for p in report.problems] == [
            ("nope.yaml", None, "file not found")
        ]


# --- catalogue from a server ----------------------------------------------------------------


class _ListMaterials(http.server.BaseHTTPRequestHandler):
    body: ClassVar[bytes] = b""
    status: ClassVar[int] = 200
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def list_materials_server() -> Iterator[tuple[str, type[_ListMaterials]]]:
    """A real HTTP server on 127.0.0.1 answering /list-materials/ with a Form 4-only list."""
    only_form4 = DEFAULT_CATALOGUE.with_machines(
        m for m in DEFAULT_CATALOGUE.machines if m.type_id == "FORM-4-0"
    )
    handler = type("Handler", (_ListMaterials,), {
        "body": json.dumps(only_form4.to_list_materials()).encode(), "seen": [],
    })
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestCatalogueFromServer:
    """--server's catalogue comes from /list-materials/, or from the package when unreachable."""

    def test_a_reachable_server_is_the_catalogue(
        self, list_materials_server: tuple[str, type[_ListMaterials]], tmp_path: Path
    ) -> None:
        url, handler = list_materials_server
        catalogue = catalogue_from_server(url)
        assert handler.seen == ["/list-materials/"]
        assert catalogue.source == f"server {url}"
        assert catalogue.type_ids == ("FORM-4-0",)
        path = tmp_path / "r.yaml"
        path.write_text(SLS_RECIPE, encoding="utf-8")
        report = validate_recipe(path, catalogue=catalogue)
        assert [p.json_path for p in report.problems] == ["$.scene.machine_type"]
        assert f"checked against the server {url}" in report.problems[0].message

    def test_an_unreachable_server_falls_back_and_says_so(self) -> None:
        url = f"http://127.0.0.1:{_closed_port()}"
        with capture_logs() as logs:
            catalogue = catalogue_from_server(url, timeout=1.0)
        assert catalogue.machines == DEFAULT_CATALOGUE.machines
        assert catalogue.source.startswith(f"shipped catalogue (server {url} not usable: Connect")
        assert [e["event"] for e in logs] == ["catalogue_server_unreachable"]

    @pytest.mark.parametrize(
        ("response", "reason"),
        [
            (httpx.Response(500, json={}), "HTTP 500"),
            (httpx.Response(200, text="<html>"), "Expecting value"),
            (httpx.Response(200, json={"printer_types": []}), "lists no printer types"),
        ],
    )
    def test_an_unusable_answer_falls_back(self, response: httpx.Response, reason: str) -> None:
        transport = httpx.MockTransport(lambda request: response)
        catalogue = catalogue_from_server("http://server", transport=transport)
        assert catalogue.machines == DEFAULT_CATALOGUE.machines
        assert reason in catalogue.source


class TestAServerBehindBasicAuth:
    """Review (rv45-small): ``validate --server http://olivia:PASSWORD@host`` took the url's
    credentials by httpx's own reading and named the server by the url whole: the password
    was said in the note, each file's line and a problem's message. Now they are sent as the
    Local API client and the health check send them (``urlauth``), and the url is named with
    its password hidden."""

    RIGHT = "Basic " + base64.b64encode(b"olivia:hunter2@proxy").decode()

    def _gate(self, sent: list[httpx.Request]) -> httpx.MockTransport:
        body = DEFAULT_CATALOGUE.to_list_materials()

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            if request.headers.get("Authorization") != self.RIGHT:
                return httpx.Response(401, text="<html>401 Authorization Required</html>")
            return httpx.Response(200, json=body)

        return httpx.MockTransport(answer)

    def test_its_credentials_are_sent_by_the_one_rule_and_not_named(self) -> None:
        sent: list[httpx.Request] = []

        catalogue = catalogue_from_server("http://olivia:hunter2%40proxy@printhost:44388",
                                          transport=self._gate(sent))

        assert [(str(r.url), r.url.userinfo, r.headers.get("Authorization")) for r in sent] == [
            ("http://printhost:44388/list-materials/", b"", self.RIGHT)]
        assert catalogue.source == "server http://olivia:[redacted]@printhost:44388"

    def test_a_refused_password_falls_back_without_saying_it(self) -> None:
        sent: list[httpx.Request] = []

        catalogue = catalogue_from_server("http://olivia:wrong-pw@printhost:44388",
                                          transport=self._gate(sent))

        assert len(sent) == 1 and "wrong-pw" not in catalogue.source
        assert catalogue.source == ("shipped catalogue (server "
                                    "http://olivia:[redacted]@printhost:44388 not usable: "
                                    "HTTP 401)")
